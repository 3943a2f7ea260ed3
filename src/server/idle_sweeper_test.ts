import { assertEquals } from "@std/assert";
import { IdleSweeper } from "./idle_sweeper.ts";

function watched() {
  const cuts: string[] = [];
  return { bytesIn: 0, bytesOut: 0, cuts, cut: (r: string) => cuts.push(r) };
}

Deno.test("IdleSweeper cuts a connection once no byte has moved for the timeout", () => {
  let now = 0;
  const sweeper = new IdleSweeper(1000, () => now);
  const conn = watched();
  sweeper.add(conn);
  now = 999;
  sweeper.sweep();
  assertEquals(conn.cuts, []);
  now = 1000;
  sweeper.sweep();
  assertEquals(conn.cuts, ["idle"]);
  now = 5000;
  sweeper.sweep();
  assertEquals(conn.cuts, ["idle"], "cut once, then no longer watched");
});

Deno.test("IdleSweeper counts bytes in either direction as activity", () => {
  let now = 0;
  const sweeper = new IdleSweeper(1000, () => now);
  const reader = watched();
  const writer = watched();
  sweeper.add(reader);
  sweeper.add(writer);
  now = 900;
  reader.bytesIn = 10;
  writer.bytesOut = 10;
  sweeper.sweep();
  now = 1800;
  sweeper.sweep();
  assertEquals([reader.cuts, writer.cuts], [[], []]);
  assertEquals(sweeper.lastActiveAt(reader), 900);
  now = 1900;
  sweeper.sweep();
  assertEquals([reader.cuts, writer.cuts], [["idle"], ["idle"]]);
});

Deno.test("IdleSweeper with timeout 0 never cuts, and still tracks activity", () => {
  let now = 0;
  const sweeper = new IdleSweeper(0, () => now);
  const conn = watched();
  sweeper.add(conn);
  now = 1e9;
  sweeper.sweep();
  assertEquals(conn.cuts, []);
  conn.bytesIn = 1;
  now = 2e9;
  sweeper.sweep();
  assertEquals(sweeper.lastActiveAt(conn), 2e9);
});

Deno.test("IdleSweeper forgets a deleted connection", () => {
  let now = 0;
  const sweeper = new IdleSweeper(1000, () => now);
  const conn = watched();
  sweeper.add(conn);
  sweeper.delete(conn);
  now = 5000;
  sweeper.sweep();
  assertEquals(conn.cuts, []);
  assertEquals(sweeper.lastActiveAt(conn), undefined);
});
