import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTimestamptz } from "../../src/store/timestamptz.js";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { ENGINES } from "../helpers/db.js";

const YEARS = ["0001", "0016", "0050", "0099", "0100", "1999", "9999"];

describe.each(ENGINES)("early and late years on %s", (engine) => {
  let t: TestApp;
  let tenantId = "";
  beforeAll(async () => {
    t = await openTestApp(engine);
    tenantId = (await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Ancient" })).json().id;
  });
  afterAll(() => t.close());

  it.each(YEARS)("a tenant's contract_start in year %s comes back as the same instant", async (year) => {
    const at = `${year}-12-13T15:06:10.250Z`;
    const res = await t.call("admin", "PATCH", `/v1/tenants/${tenantId}`, { contract_start: at, contract_end: null });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().contract_start).toBe(at);
    const read = await t.call("auditor", "GET", `/v1/tenants/${tenantId}`);
    expect(read.statusCode, read.body).toBe(200);
    expect(read.json().contract_start).toBe(at);
  });

  it.each(YEARS)("an audit event's occurred_at in year %s comes back as the same instant", async (year) => {
    const res = await t.call("service", "POST", "/v1/audit", {
      action: "history.recorded",
      tenant_id: tenantId,
      occurred_at: `${year}-06-01T23:30:00+01:00`,
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().occurred_at).toBe(`${year}-06-01T22:30:00.000Z`);
    const listed = await t.call("auditor", "GET", `/v1/audit?tenant_id=${tenantId}&action=history.recorded`);
    expect(listed.statusCode, listed.body.slice(0, 200)).toBe(200);
    expect(listed.json().events.at(-1).occurred_at).toBe(`${year}-06-01T22:30:00.000Z`);
  });

  it("the trial_ends_at of year 0016 that used to give a 500 reads back", async () => {
    const res = await t.call("admin", "PATCH", `/v1/tenants/${tenantId}`, { trial_ends_at: "0016-12-13T15:06:10Z" });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().trial_ends_at).toBe("0016-12-13T15:06:10.000Z");
  });
});

describe("parseTimestamptz (PGlite's timestamptz text)", () => {
  it.each([
    ["0099-01-01 00:00:00+00", "0099-01-01T00:00:00.000Z"],
    ["0001-01-01 00:00:00+00", "0001-01-01T00:00:00.000Z"],
    ["0016-12-13 15:06:10.123456+00", "0016-12-13T15:06:10.123Z"],
    ["2026-11-29 20:00:00+05:30", "2026-11-29T14:30:00.000Z"],
    ["2026-11-29 20:00:00-03", "2026-11-29T23:00:00.000Z"],
    ["1900-01-01 00:00:00+00:09:21", "1899-12-31T23:50:39.000Z"],
    ["9999-12-31 23:59:59.999+00", "9999-12-31T23:59:59.999Z"],
    ["2000-02-29 12:00:00+00", "2000-02-29T12:00:00.000Z"],
  ])("%s", (text, iso) => {
    expect(parseTimestamptz(text).toISOString()).toBe(iso);
  });

  it("BC years and infinity", () => {
    expect(parseTimestamptz("0001-01-01 00:00:00+00 BC").getUTCFullYear()).toBe(0);
    expect(Number.isNaN(parseTimestamptz("infinity").getTime())).toBe(true);
  });
});
