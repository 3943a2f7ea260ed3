import { assert, assertEquals, assertThrows } from "@std/assert";
import { CidrSet } from "./cidr.ts";

Deno.test("CidrSet matches IPv4 ranges at every prefix boundary", () => {
  const set = CidrSet.parse("192.168.4.0/22");
  assertEquals(set.has("192.168.4.0"), true);
  assertEquals(set.has("192.168.7.255"), true);
  assertEquals(set.has("192.168.8.0"), false);
  assertEquals(set.has("192.168.3.255"), false);
  assertEquals(CidrSet.parse("0.0.0.0/0").has("203.0.113.9"), true);
  assertEquals(CidrSet.parse("203.0.113.9").has("203.0.113.9"), true);
  assertEquals(CidrSet.parse("203.0.113.9/32").has("203.0.113.8"), false);
});

Deno.test("CidrSet matches IPv6 ranges, and IPv4-mapped addresses against IPv4 ranges", () => {
  const set = CidrSet.parse("2001:db8:abcd::/48, 127.0.0.0/8");
  assertEquals(set.has("2001:db8:abcd:12::1"), true);
  assertEquals(set.has("2001:db8:abce::1"), false);
  assertEquals(set.has("::ffff:127.0.0.1"), true);
  assertEquals(set.has("::1"), false);
  assertEquals(CidrSet.parse("::1").has("::1"), true);
  assertEquals(CidrSet.parse("::/0").has("fe80::1"), true);
  // ::/0 spans the IPv4-mapped block, so it holds IPv4 clients as well.
  assertEquals(CidrSet.parse("::/0").has("10.0.0.1"), true);
  assertEquals(CidrSet.parse("2000::/3").has("10.0.0.1"), false);
});

Deno.test("CidrSet rejects what is not a range, naming the entry", () => {
  for (
    const bad of [
      "10.0.0.0/33",
      "10.0.0/8",
      "::1/129",
      "10.0.0.1/8/8",
      "abc",
      "",
      "10.0.0.0/08",
      "1.2.3.4,",
    ]
  ) {
    assertThrows(
      () => CidrSet.parse(bad),
      TypeError,
      "is not an IP address or CIDR range",
    );
  }
});

Deno.test("CidrSet says no to what is not an address", () => {
  const set = CidrSet.parse("0.0.0.0/0,::/0");
  assertEquals(set.has("not-an-ip"), false);
  assertEquals(set.has("/tmp/upcase.sock"), false);
});

Deno.test("CidrSet matches an entry written as IPv4-mapped IPv6 against the IPv4 address", () => {
  const mapped = CidrSet.parse("::ffff:10.0.0.5,::ffff:192.168.0.0/112");
  assert(mapped.has("10.0.0.5"));
  assert(mapped.has("::ffff:10.0.0.5"));
  assert(mapped.has("192.168.7.1"));
  assert(!mapped.has("10.0.0.6"));
  assert(!mapped.has("192.169.0.1"));
  assert(!CidrSet.parse("::1/128").has("127.0.0.1"));
});
