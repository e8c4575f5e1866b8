/**
 * timestamptz text (DateStyle ISO) to a Date, for PGlite. Its default parser
 * hands the text to `new Date()`, which reads years 0000–0099 as 1900–1999
 * (and some as invalid dates, which then fail every read of the row);
 * node-postgres parses them right. Same format in, same instant out, on
 * both engines.
 *
 * Accepts `YYYY-MM-DD HH:MM:SS[.ffffff]±HH[:MM[:SS]][ BC]` and
 * `infinity`/`-infinity` (as invalid dates, like node-postgres would give
 * infinite values no instant either).
 */
const TIMESTAMPTZ =
  /^(\d{4,})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?|Z)?( BC)?$/;

export function parseTimestamptz(text: string): Date {
  const m = TIMESTAMPTZ.exec(text);
  if (!m) return new Date(Number.NaN);
  const [, y, mo, d, h, mi, s, frac, sign, oh, om, os, bc] = m;
  let year = Number(y);
  if (bc) year = 1 - year;
  const ms = frac ? Math.floor(Number(`0.${frac}`) * 1000 + 1e-9) : 0;
  const date = new Date(Date.UTC(2000, Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms));
  // Date.UTC maps years 0-99 to 1900-1999; setting the year afterwards does not.
  date.setUTCFullYear(year, Number(mo) - 1, Number(d));
  const offset = sign ? (sign === "-" ? -1 : 1) * (Number(oh) * 3600 + Number(om ?? 0) * 60 + Number(os ?? 0)) : 0;
  return new Date(date.getTime() - offset * 1000);
}
