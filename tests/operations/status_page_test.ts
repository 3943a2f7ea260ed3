/**
 * The status page in a real browser: headless Chromium, driven by
 * playwright-core, loads it from a real admin server while test clients
 * hold connections open. With UPCASE_SCREENSHOT=1 the first test also
 * rewrites docs/status.png, the picture in docs/admin.md; otherwise runs leave the
 * tree as it was.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { type Browser, chromium, type Page } from "playwright-core";
import { serveAdmin } from "../../src/admin/server.ts";
import { serveOn } from "../_transport.ts";
import { finish, roundTrip } from "../_admin.ts";
import { needs, ROOT } from "../_helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const SCREENSHOT = Deno.env.get("UPCASE_SCREENSHOT") === "1";
// Bounds for waits on the page; each wait ends as soon as its condition
// holds, and the page polls once a second.
const WAIT = { timeout: 15_000 };

async function start() {
  const server = await serveOn({
    hostname: "127.0.0.1",
    port: 0,
    maxConnections: 1000,
    onListen() {},
  });
  const admin = serveAdmin({
    hostname: "127.0.0.1",
    port: 0,
    server,
    onListen() {},
  });
  return {
    server,
    url: `http://127.0.0.1:${admin.addr.port}/`,
    connect: () =>
      Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }),
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await admin.shutdown();
    },
  };
}

function launch(): Promise<Browser> {
  // The tests run as root, where Chromium refuses its sandbox.
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
}

function peerOf(conn: Deno.Conn): string {
  return `127.0.0.1:${(conn.localAddr as Deno.NetAddr).port}`;
}

function row(page: Page, id: number) {
  return page.locator(`#connections tbody tr[data-id="${id}"]`);
}

async function chartUpdates(page: Page): Promise<string> {
  return await page.getAttribute("#chart", "data-updates") ?? "";
}

/**
 * Waits until the chart has taken a sample since it showed `updates`.
 * Attribute selectors, not waitForFunction: polling a string predicate
 * needs eval in the page, which its Content-Security-Policy forbids.
 */
async function chartMovesOn(page: Page, updates: string): Promise<void> {
  await page.locator(`#chart:not([data-updates="${updates}"])`).waitFor(WAIT);
}

Deno.test({
  ...needs(
    [CHROMIUM],
    "status page shows the connections a client holds, live, with a moving chart",
  ),
  async fn() {
    await using t = await start();
    const a = await t.connect();
    const b = await t.connect();
    assertEquals(await roundTrip(a, "hello"), "HELLO");
    assertEquals(await roundTrip(b, "b".repeat(1234)), "B".repeat(1234));
    const browser = await launch();
    try {
      const page = await browser.newPage({
        viewport: { width: 1280, height: 800 },
      });
      const requested: string[] = [];
      page.on("request", (r) => void requested.push(r.url()));
      await page.goto(t.url);

      await row(page, 1).waitFor(WAIT);
      await row(page, 2).waitFor(WAIT);
      const cells = (id: number) =>
        row(page, id).locator("td").allTextContents();
      // id, peer, age, bytes in, bytes out, idle: all but the times.
      const known = async (id: number) => {
        const [rowId, peer, , bytesIn, bytesOut] = await cells(id);
        return [rowId, peer, bytesIn, bytesOut];
      };
      assertEquals(await known(1), ["1", peerOf(a), "5", "5"]);
      assertEquals(await known(2), ["2", peerOf(b), "1,234", "1,234"]);
      assertEquals(await page.textContent("#total-active"), "2");
      assertEquals(
        await page.getAttribute("#state", "data-state"),
        "accepting",
      );
      assertEquals(
        await page.textContent("#listen-addr"),
        `127.0.0.1:${t.server.addr.port}`,
      );
      assertEquals(await page.textContent("#listen-max"), "1,000");

      // This process's event loop is the server's, so holding it up is a
      // real stall: a timer due at most 100 ms in fires 200 ms late or more.
      const until = performance.now() + 300;
      while (performance.now() < until) { /* busy, as a long computation */ }
      await page.locator('#total-lag[data-high="true"]').waitFor(WAIT);
      const lag = await page.textContent("#total-lag") ?? "";
      const [, recent, worst] = /^(\d+) ms · worst (\d+) ms$/.exec(lag) ?? [];
      assert(Number(recent) >= 200 && Number(worst) >= Number(recent), lag);

      // Live: more bytes on a connection show in its row and in the chart.
      const before = await chartUpdates(page);
      assertEquals(await roundTrip(a, "x".repeat(4000)), "X".repeat(4000));
      await page.locator(
        '#connections tbody tr[data-id="1"][data-bytes-in="4005"]',
      ).waitFor(WAIT);
      await chartMovesOn(page, before);
      await page.locator('#chart:not([data-max-in="0"])').waitFor(WAIT);
      const line = await page.getAttribute("#chart-in", "points");
      const drawn = await page.getAttribute("#chart", "data-points");
      assertEquals(line?.split(" ").length, Number(drawn));
      assert(Number(drawn) > 0);

      // A connection that closes leaves the table.
      await finish(b);
      await row(page, 2).waitFor({ state: "detached", ...WAIT });
      assertEquals(await row(page, 1).count(), 1);

      // Everything the page loaded came from the admin server itself.
      assert(requested.length > 0);
      const outside = requested.filter((u) => !u.startsWith(t.url));
      assertEquals(outside, []);

      if (SCREENSHOT) await takeScreenshot(page, t);
      await page.close();
    } finally {
      await browser.close();
    }
    await finish(a);
  },
});

/**
 * Gives the page some history to show, a few clients and traffic that
 * varies over about twenty seconds, and writes docs/status.png.
 */
async function takeScreenshot(
  page: Page,
  t: Awaited<ReturnType<typeof start>>,
): Promise<void> {
  const clients = [];
  for (const size of [12, 300, 48_000, 7]) {
    const conn = await t.connect();
    await roundTrip(conn, "a".repeat(size));
    clients.push(conn);
  }
  for (let i = 0; i < 20; i++) {
    const updates = await chartUpdates(page);
    const size = Math.round(20_000 * (1.2 + Math.sin(i / 3)));
    const conn = clients[i % 3]!;
    await roundTrip(conn, "z".repeat(size));
    await chartMovesOn(page, updates);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.screenshot({ path: `${ROOT}docs/status.png`, fullPage: true });
  for (const conn of clients) await finish(conn);
}

Deno.test({
  ...needs(
    [CHROMIUM],
    "status page fits a 360 px screen: cards stack, the table scrolls",
  ),
  async fn() {
    await using t = await start();
    const conn = await t.connect();
    assertEquals(await roundTrip(conn, "narrow"), "NARROW");
    const browser = await launch();
    try {
      const page = await browser.newPage({
        viewport: { width: 360, height: 740 },
      });
      await page.goto(t.url);
      await row(page, 1).waitFor(WAIT);
      assert(await row(page, 1).isVisible());
      // The page itself never scrolls sideways; only the table's box may.
      const pageWidth = await page.evaluate(
        "document.documentElement.scrollWidth",
      );
      assert(pageWidth as number <= 360, `page is ${pageWidth} px wide`);
      const wrap = await page.locator(".table-wrap").boundingBox();
      assert(
        wrap && wrap.x >= 0 && wrap.x + wrap.width <= 360,
        JSON.stringify(wrap),
      );
      // The cards stack: one column, the totals under the listener.
      const listener = await page.locator("#listener").boundingBox();
      const totals = await page.locator("#totals").boundingBox();
      if (!listener || !totals) throw new Error("The cards are not shown");
      assertEquals(totals.x, listener.x);
      assert(totals.y >= listener.y + listener.height);
      const chart = await page.locator("#chart").boundingBox();
      assert(chart && chart.x + chart.width <= 360);
      await page.close();
    } finally {
      await browser.close();
    }
    await finish(conn);
  },
});
