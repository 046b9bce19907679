// Two device administrators at work. The first makes an enrollment link
// (shown once, with its QR code) and revokes it, and gives the phone a
// passcode policy through a group with compliance rules; then they erase a phone
// together: the first asks (the serial number typed to confirm), the
// console says a second person must approve; the second finds the
// request under Approvals and approves it; the first sees the erase
// arrive on the device's page.
import { check, env, expect, open, path, scenario, totp } from "./lib.mjs";

async function signIn(t, name, key) {
  const { page } = t;
  await page.goto(new URL("/console/", env("MAMORI_BASE")).href);
  await page.fill("#name", name);
  await page.fill("#password", env("MAMORI_PASSWORD"));
  await page.click("main form button[type=submit]");
  await page.fill("#code", totp(key));
  await page.click("form:has(#code) button[type=submit]");
  expect(path(t) === "/console/", `${name} is signed in: ${path(t)}`);
}

await scenario("two-person-erase", async (browser, name) => {
  const base = env("MAMORI_BASE");
  const device = `/console/devices/${env("MAMORI_UDID")}`;
  const first = await open(browser, base, name);
  const second = await open(browser, base, name);

  await signIn(first, env("MAMORI_FIRST"), env("MAMORI_FIRST_KEY"));

  // Enrollment: a link with its QR code, then revoked.
  await first.page.click("nav.areas a[href='/console/enrollment']");
  await check(first, "enrollment");
  await first.page.fill("#link-uses", "3");
  await first.page.click("#link-form button[type=submit]");
  const url = (await first.page.textContent("#new-link-url")).trim();
  expect(url.includes("/enroll/"), `a download link: ${url}`);
  expect(
    (await first.page.getAttribute("#new-link-qr", "src")).startsWith("data:image/svg+xml;base64,"),
    "its QR code is drawn on the server",
  );
  await check(first, "enrollment-link");
  await first.page.click("#links tbody tr button.danger");
  await first.page.waitForSelector("#link-revoked");
  expect((await first.page.locator("#links tbody tr").count()) === 0, "no link left");

  // Policies and groups: a passcode policy from its generated form, a
  // group with the phone (by its serial number) that receives it, its
  // compliance rules, and the compliance report.
  await first.page.click("nav.areas a[href='/console/policies']");
  await check(first, "policies");
  await first.page.click("#new-restrictions");
  await check(first, "policy-new-restrictions");
  await first.page.goto(new URL("/console/policies", base).href);
  await first.page.click("#new-passcode");
  await first.page.fill("#policy-name", "Phones passcode");
  await first.page.fill("#f-minLength", "8");
  await first.page.selectOption("#f-forcePIN", "true");
  await first.page.click("#policy-form button[type=submit]");
  await first.page.waitForSelector("#policy-saved");
  await check(first, "policy");
  await first.page.click("nav.areas a[href='/console/groups']");
  await first.page.fill("#group-name", "Phones");
  await first.page.click("#group-form button[type=submit]");
  await first.page.waitForSelector("#group-saved");
  await first.page.fill("#members-add", env("MAMORI_SERIAL"));
  await first.page.click("#members-form button[type=submit]");
  await first.page.waitForSelector("#members li");
  await first.page.check("#policies-form input[name=policy]");
  await first.page.click("#policies-form button[type=submit]");
  await first.page.waitForSelector("#group-saved");
  await first.page.click("#progress-link");
  await first.page.waitForSelector("#progress tbody tr");
  await check(first, "group-progress");
  await first.page.goBack();
  await first.page.fill("#min-ios", "10.0");
  await first.page.click("#compliance-form button[value=save]");
  await first.page.waitForSelector("#group-saved");
  await check(first, "group");
  await first.page.goto(new URL("/console/groups", base).href);
  await check(first, "groups");
  await first.page.goto(new URL("/console/compliance", base).href);
  await check(first, "compliance");

  await first.page.goto(new URL(device, base).href);
  await first.page.fill("#erase-confirm", env("MAMORI_SERIAL"));
  await first.page.click("#erase-form button[type=submit]");
  await first.page.waitForSelector("#action-awaiting");
  await check(first, "erase-awaiting");

  // The second administrator: one request, approved.
  const key = env("MAMORI_SECOND_KEY");
  await new Promise((r) => setTimeout(r, 1000));
  await signIn(second, env("MAMORI_SECOND"), key);
  const waiting = (await second.page.textContent("#approvals-waiting dd")).trim();
  expect(waiting === "1", `the overview counts one request, not ${waiting}`);
  await second.page.click("nav.areas a[href='/console/approvals']");
  await check(second, "approvals");
  const rows = second.page.locator("#approvals tbody tr");
  expect((await rows.count()) === 1, "one request waits");
  expect(
    (await rows.first().textContent()).includes(env("MAMORI_FIRST")),
    "it names who asked",
  );
  await rows.first().locator("button.approve").click();
  await second.page.waitForSelector("#approval-done");
  await check(second, "approved");

  // The first sees the erase arrive.
  const row = first.page.locator("#commands tbody tr", { hasText: "EraseDevice" });
  let state = "";
  for (let i = 0; i < 60 && state !== "Acknowledged"; i++) {
    await first.page.waitForTimeout(500);
    await first.page.goto(new URL(device, base).href);
    if ((await row.count()) === 1) state = (await row.locator("td.state").textContent()).trim();
  }
  expect(state === "Acknowledged", `the erase reached the device: ${state}`);
  await check(first, "erased");
});
