// A helpdesk user signs in with a password and a TOTP code, finds a
// (simulated) iPhone by its serial number, locks it with a message, and
// watches the command's state turn to Acknowledged on the device's page.
import { check, env, expect, open, path, scenario, totp } from "./lib.mjs";

await scenario("helpdesk-lock", async (browser, name) => {
  const t = await open(browser, env("MAMORI_BASE"), name);
  const { page } = t;
  const serial = env("MAMORI_SERIAL");

  await page.goto(new URL("/console/", env("MAMORI_BASE")).href);
  await page.fill("#name", env("MAMORI_NAME"));
  await page.fill("#password", env("MAMORI_PASSWORD"));
  await page.click("main form button[type=submit]");
  expect(path(t) === "/console/second-factor", `after the password: ${path(t)}`);
  await check(t, "second-factor-totp");
  await page.fill("#code", totp(env("MAMORI_TOTP_KEY")));
  await page.click("form:has(#code) button[type=submit]");
  expect(path(t) === "/console/", `after the code: ${path(t)}`);

  await page.click("nav.areas a[href='/console/devices']");
  expect(path(t) === "/console/devices", `the devices area: ${path(t)}`);
  await check(t, "devices");
  await page.fill("#serial", serial);
  await page.click("form.search button[type=submit]");
  const rows = await page.locator("#devices tbody tr").count();
  expect(rows === 1, `one device has serial ${serial}, not ${rows}`);
  await check(t, "devices-search");

  await page.click("#devices tbody tr a");
  expect(path(t).startsWith("/console/devices/"), `the device's page: ${path(t)}`);
  await check(t, "device");
  await page.fill("#lock-message", "Locked by IT: call the helpdesk");
  await page.click("#lock-form button[type=submit]");
  await page.waitForSelector("#action-sent");
  const row = page.locator("#commands tbody tr", { hasText: "DeviceLock" });
  expect((await row.count()) === 1, "the lock is listed under Commands");

  // The device answers at its next check-in; the page shows it on reload.
  let state = "";
  for (let i = 0; i < 60 && state !== "Acknowledged"; i++) {
    await page.waitForTimeout(500);
    await page.reload();
    state = (await row.locator("td.state").textContent()).trim();
  }
  expect(state === "Acknowledged", `the lock's result arrived, state ${state}`);
  await check(t, "device-locked");
  // The command's own page: its status and result.
  await row.locator("a").first().click();
  expect(/\/commands\//.test(path(t)), `the command's page: ${path(t)}`);
  await check(t, "command");

  // Their own API tokens: none yet, and the form to make one.
  await page.click("nav.areas a[href='/console/tokens']");
  await page.waitForSelector("#token-form");
  await check(t, "tokens");
});
