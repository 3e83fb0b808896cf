// End-to-end test of the chat page in headless Chromium (Debian's `chromium`, driven by
// `playwright-core`). It starts nothing itself: point it at a running `wskit-chat`.
//
//   node examples/chat/e2e/chat.spec.mjs http://127.0.0.1:3000 [screenshot.png]
//
// Environment: CHAT_URL and CHAT_SCREENSHOT stand in for the arguments; CHROMIUM overrides
// /usr/bin/chromium; CHAT_ROOM names the room (default "lobby"). The screenshot shows Alice's
// page while Bob types; SCREENSHOT-end.png shows her page at the end. With CHAT_RESTART=stdio the scenario also checks that both pages reconnect
// and re-join their room after a server restart: it prints a line `RESTART` and waits for a
// line `restarted` on stdin (scripts/test.d/chat-browser.sh does the restarting).
//
// Two users (two browser contexts) join one room; a message typed in one page appears in the
// other; the typing indicator shows and clears; an over-long message shows the server's
// validation error to its sender only; leaving shows `room_left` to the other. Any uncaught
// page error fails the run.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const base = process.argv[2] ?? process.env.CHAT_URL;
const screenshot = process.argv[3] ?? process.env.CHAT_SCREENSHOT;
if (!base) {
  console.error("usage: chat.spec.mjs BASE_URL [SCREENSHOT] (or CHAT_URL / CHAT_SCREENSHOT)");
  process.exit(2);
}
const room = process.env.CHAT_ROOM ?? "lobby";
let restarting = false;
const TIMEOUT = 10_000;

/** Steps run in order; the first failure stops the scenario (later steps depend on it). */
const results = [];
async function step(name, body) {
  const started = Date.now();
  try {
    await body();
    results.push({ name, ok: true });
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name}: ${error instanceof Error ? error.message : error}`);
    throw error;
  }
}

/** A user's page, with every uncaught error and console error recorded. */
async function openUser(browser, name) {
  const context = await browser.newContext({ viewport: { width: 820, height: 760 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const errors = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    // While the server restarts, refused token fetches and WebSocket attempts are expected.
    if (m.type() === "error" && !restarting) errors.push(`console.error: ${m.text()} (${m.location().url})`);
  });
  await page.goto(base);
  return { name, page, errors };
}

/** Resolves when `#messages` has an item of class `kind` containing `text`. */
function item(user, text, kind = "") {
  return user.page.locator(`#messages li${kind ? `.${kind}` : ""}`, { hasText: text });
}

async function waitStatus(user, text) {
  await user.page.locator("#status", { hasText: text }).waitFor();
}

async function typingText(user) {
  return (await user.page.locator("#typing").textContent()) ?? "";
}

async function waitTyping(user, predicate, what) {
  const deadline = Date.now() + TIMEOUT;
  let last = "";
  while (Date.now() < deadline) {
    last = await typingText(user);
    if (predicate(last)) return;
    await user.page.waitForTimeout(50);
  }
  throw new Error(`${user.name}'s #typing never ${what} (last: ${JSON.stringify(last)})`);
}

async function readLine(prompt) {
  console.log(prompt);
  const rl = createInterface({ input: process.stdin });
  try {
    for await (const line of rl) return line.trim();
    return "";
  } finally {
    rl.close();
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
let failed = false;
let alice;
let bob;
try {
  await step("both pages load and connect with a token by subprotocol", async () => {
    alice = await openUser(browser, "alice");
    bob = await openUser(browser, "bob");
    for (const user of [alice, bob]) {
      await user.page.fill("#name", user.name);
      await user.page.click("#connect");
      await waitStatus(user, `connected as ${user.name}`);
      assert.equal(await user.page.isDisabled("#connect"), true, "connect stays disabled");
      assert.equal(await user.page.isEnabled("#send"), true, "send enabled once connected");
    }
  });

  await step("join the same room: the other page sees room_joined", async () => {
    for (const user of [alice, bob]) {
      await user.page.fill("#room", room);
      await user.page.click("#join");
      await item(user, "you joined", "system").waitFor();
    }
    await item(alice, "bob joined", "system").waitFor();
  });

  await step("typing shows on the other page and clears when the message arrives", async () => {
    await alice.page.locator("#message").pressSequentially("hello bob", { delay: 20 });
    await waitTyping(bob, (t) => t.includes("alice") && t.includes("is typing"), "showed alice typing");
    await alice.page.click("#send");
    await item(bob, "hello bob", "chat").waitFor();
    assert.equal(await item(bob, "hello bob").locator(".who").textContent(), "alice");
    assert.equal(await item(bob, "hello bob").locator(".room").textContent(), `#${room}`);
    await waitTyping(bob, (t) => t === "", "cleared");
    assert.equal(await alice.page.inputValue("#message"), "", "the input is emptied");
  });

  await step("the sender does not get its own message back (publish skips the sender)", async () => {
    // Bob answers; once Alice has his reply, any echo of her own message would be there too.
    await bob.page.fill("#message", "hi alice");
    await bob.page.press("#message", "Enter");
    await item(alice, "hi alice", "chat").waitFor();
    assert.equal(await item(alice, "hello bob").count(), 1, "alice sees her message once");
    assert.equal(await item(bob, "hi alice").count(), 1, "bob sees his message once");
  });

  await step("typing stops by itself after a pause without sending", async () => {
    await bob.page.locator("#message").pressSequentially("thinking", { delay: 20 });
    await waitTyping(alice, (t) => t.includes("bob") && t.includes("is typing"), "showed bob typing");
    if (screenshot) {
      mkdirSync(dirname(screenshot), { recursive: true });
      await alice.page.screenshot({ path: screenshot });
    }
    await waitTyping(alice, (t) => t === "", "cleared after the pause");
    await bob.page.fill("#message", "");
  });

  await step("an over-long message shows validation_failed to its sender only", async () => {
    const long = "x".repeat(1001);
    await alice.page.fill("#message", long);
    await alice.page.click("#send");
    const error = item(alice, "validation_failed", "error");
    await error.waitFor();
    const text = (await error.textContent()) ?? "";
    assert.match(text, /message:/, `the issue names the field: ${text}`);
    // Bob gets neither the text nor the error; a later message proves his stream moved on.
    await alice.page.fill("#message", "still here");
    await alice.page.click("#send");
    await item(bob, "still here", "chat").waitFor();
    assert.equal(await item(bob, long).count(), 0, "bob never sees the refused message");
    assert.equal(await bob.page.locator("#messages li.error").count(), 0, "bob sees no error");
  });

  if (process.env.CHAT_RESTART === "stdio") {
    await step("after a server restart both pages reconnect and re-join the room", async () => {
      restarting = true;
      // Each page must see its connection drop and come back, not just keep its old status.
      for (const user of [alice, bob]) {
        await user.page.evaluate(() => {
          const status = /** @type {HTMLElement} */ (document.getElementById("status"));
          const w = /** @type {any} */ (window);
          w.sawDrop = false;
          new MutationObserver(() => {
            if (status.className !== "connected") w.sawDrop = true;
          }).observe(status, { attributes: true });
        });
      }
      const reply = await readLine("RESTART");
      assert.equal(reply, "restarted", "the harness restarted the server");
      for (const user of [alice, bob]) {
        await user.page.waitForFunction(
          () => /** @type {any} */ (window).sawDrop &&
            document.getElementById("status")?.className === "connected",
          undefined,
          { timeout: 20_000 },
        );
        await waitStatus(user, `connected as ${user.name}`);
      }
      restarting = false;
      // Whoever re-joined second is announced to the other; then messages flow again.
      await alice.page.fill("#message", "back again");
      await alice.page.click("#send");
      await item(bob, "back again", "chat").waitFor({ timeout: 20_000 });
    });
  }

  await step("leaving shows room_left on the other page", async () => {
    await bob.page.click("#leave");
    await item(bob, "you left", "system").waitFor();
    await item(alice, "bob left", "system").waitFor();
    // Bob no longer receives the room's messages. Alice's next (refused) message proves the
    // server handled "bye bob" before it; a short grace covers delivery to Bob had he been there.
    await alice.page.fill("#message", "bye bob");
    await alice.page.click("#send");
    await alice.page.fill("#message", "y".repeat(1001));
    await alice.page.click("#send");
    await alice.page.locator("#messages li.error").nth(1).waitFor();
    await bob.page.waitForTimeout(300);
    assert.equal(await item(bob, "bye bob").count(), 0, "bob left and gets nothing more");
  });

  await step("no page errors", async () => {
    assert.deepEqual([...alice.errors, ...bob.errors], []);
  });

  if (screenshot) {
    const end = screenshot.replace(/(\.png)?$/, "-end.png");
    await alice.page.screenshot({ path: end });
    console.log(`screenshots: ${screenshot}, ${end}`);
  }
} catch (error) {
  failed = true;
  if (!(error instanceof assert.AssertionError)) console.error(error);
  for (const user of [alice, bob]) {
    if (!user) continue;
    console.log(`--- ${user.name}: status ${JSON.stringify(await user.page.locator("#status").textContent())}`);
    for (const li of await user.page.locator("#messages li").allTextContents()) console.log(`    ${li}`);
    for (const e of user.errors) console.log(`    ${e}`);
  }
} finally {
  await browser.close();
}
const passed = results.filter((r) => r.ok).length;
console.log(`${passed} passed, ${results.length - passed} failed`);
process.exit(failed ? 1 : 0);
