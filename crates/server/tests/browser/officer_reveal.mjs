// A security officer sets up (password, then a passkey), finds a person
// by their pseudonymous ID, reveals their personal data with a reason,
// runs the breach-scope report on their own reads and downloads it, then
// opens the incident an insider's bulk read opened and sees its APPI
// deadlines counting down.
import { readFileSync } from "node:fs";
import { check, env, expect, open, path, scenario, virtualAuthenticator } from "./lib.mjs";

await scenario("officer-reveal", async (browser, name) => {
  const base = env("MAMORI_BASE");
  const t = await open(browser, base, name);
  const { page } = t;
  await virtualAuthenticator(t);
  const person = env("MAMORI_PERSON");

  // First-time setup, as any new account.
  await page.goto(new URL("/console/", base).href);
  await page.fill("#name", env("MAMORI_NAME"));
  await page.fill("#password", env("MAMORI_ONE_TIME_PASSWORD"));
  await page.click("main form button[type=submit]");
  await page.fill("#current", env("MAMORI_ONE_TIME_PASSWORD"));
  await page.fill("#new", env("MAMORI_NEW_PASSWORD"));
  await page.fill("#repeat", env("MAMORI_NEW_PASSWORD"));
  await page.click("main form button[type=submit]");
  await page.waitForSelector("form[data-passkey=create]");
  await Promise.all([page.waitForURL("**/console/setup/passkey"), page.click("form[data-passkey] button")]);
  await page.click("main a[href='/console/']");
  expect(path(t) === "/console/", `set up: ${path(t)}`);

  // People: pseudonymous; the person's page; the reveal with a reason.
  await page.click("nav.areas a[href='/console/people']");
  await check(t, "people");
  const listed = await page.textContent("#people");
  expect(listed.includes(person), "the person is listed by ID");
  expect(!listed.includes(env("MAMORI_PERSON_NAME")), "the list names no one");
  await page.click(`#people a[href='/console/people/${person}']`);
  await check(t, "person");
  await page.fill("#reveal-reason", env("MAMORI_REASON"));
  await page.click("#reveal-form button[type=submit]");
  const shown = (await page.textContent("#person-name")).trim();
  expect(shown === env("MAMORI_PERSON_NAME"), `the name is shown: ${shown}`);
  await check(t, "person-revealed");
  // Offboarding: the confirmation lists what would happen (not done here).
  await page.click("#offboard-start button[type=submit]");
  await page.waitForSelector("#offboard-plan");
  await check(t, "offboard-confirm");
  await page.click("#offboard-form a");

  // The breach scope of the officer's own reads today, and its CSV.
  await page.click("nav.areas a[href='/console/reports/breach-scope']");
  await check(t, "breach-scope-form");
  await page.fill("#from", env("MAMORI_TODAY"));
  await page.fill("#to", env("MAMORI_TODAY"));
  await page.fill("#actor", `admin:${env("MAMORI_NAME")}`);
  await page.click("form.search button[type=submit]");
  const people = (await page.textContent("#scope-people dd")).trim();
  expect(people === "1", `one person in scope, not ${people}`);
  await check(t, "breach-scope-result");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#scope-csv")]);
  const csv = readFileSync(await download.path(), "utf8");
  expect(csv.startsWith("person,fields,reads,first,last,actors"), `a CSV: ${csv.slice(0, 80)}`);
  expect(csv.includes(person), "the CSV names the person by ID");

  // The alert the insider's bulk read raised, linked to its incident.
  const incident = env("MAMORI_INCIDENT");
  await page.click("nav.areas a[href='/console/alerts']");
  const raised = await page.locator("#alerts tbody tr", { hasText: "bulk_personal_data_read" }).count();
  expect(raised >= 1, `the bulk-read alert is listed: ${raised}`);
  const linked = await page.locator(`#alerts a[href='/console/incidents/${incident}']`).count();
  expect(linked === 1, `the alert links its incident: ${linked}`);
  await check(t, "alerts");

  // The incident the insider's bulk read opened: its deadlines.
  await page.click("nav.areas a[href='/console/incidents']");
  await check(t, "incidents");
  await page.click(`#incidents a[href='/console/incidents/${incident}']`);
  for (const id of ["deadline-preliminary", "deadline-final"]) {
    const text = await page.textContent(`#${id} .countdown`);
    expect(/残り \d+ 日 \d+ 時間/.test(text), `${id} counts down: ${text}`);
  }
  const final = await page.textContent("#deadline-final");
  expect(/\d{4}-\d{2}-\d{2} \d{2}:\d{2} JST/.test(final), `the final date in JST: ${final}`);
  const items = await page.locator("#report-items tbody tr").count();
  expect(items === 9, `the nine report items, not ${items}`);
  expect(
    (await page.getAttribute("#incident-evidence", "href")).endsWith(`/incidents/${incident}/evidence`),
    "the evidence bundle can be downloaded",
  );
  await check(t, "incident");

  // The audit log: their own reveal is on record; the chain verifies.
  await page.click("nav.areas a[href='/console/audit']");
  await page.fill("#actor", `admin:${env("MAMORI_NAME")}`);
  await page.fill("#action", "people.read");
  await page.click("form.search button[type=submit]");
  const rows = await page.locator("#audit tbody tr").count();
  expect(rows >= 1, `the reveal is in the log: ${rows} rows`);
  await check(t, "audit");
  await page.click("#verify-form button[type=submit]");
  await page.waitForSelector("#verify-ok");
  await check(t, "audit-verified");
});
