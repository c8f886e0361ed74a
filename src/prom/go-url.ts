/**
 * Why Go's net/url.Parse (Go 1.26, which Prometheus 3.16 is built with) refuses a URL, in its
 * words: Prometheus reports these for api_server and proxy_url. The URL a message quotes has its
 * password replaced, as Go's URL.Redacted does: these messages reach logs and APIs.
 */
import { goQuote } from "./go-quote.ts";

const HEX = /^[0-9A-Fa-f]{2}$/;
/** ASCII characters net/url accepts unescaped in a host. */
const HOST_CHARS = /^[A-Za-z0-9!"$&'()*+,\-.:;<=>[\]_~]$/;

/** url.unescape's checks: malformed %-escapes, and in hosts stray characters and escaped ASCII. */
function unescapeError(s: string, host = false): string | undefined {
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "%") {
      const hex = s.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return `invalid URL escape ${goQuote(s.slice(i, i + 3))}`;
      if (host && Number.parseInt(hex[0]!, 16) < 8 && hex !== "25") return `invalid URL escape ${goQuote(`%${hex}`)}`;
      i += 2;
    } else if (host && c.charCodeAt(0) < 0x80 && !HOST_CHARS.test(c)) {
      return `invalid character ${goQuote(c)} in host name`;
    }
  }
  return undefined;
}

/** A zone identifier's escapes must be well-formed and stand for bytes a host may hold (or a space). */
function zoneError(s: string): string | undefined {
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== "%") continue;
    const hex = s.slice(i + 1, i + 3);
    if (!HEX.test(hex)) return `invalid URL escape ${goQuote(s.slice(i, i + 3))}`;
    const v = String.fromCharCode(Number.parseInt(hex, 16));
    if (hex !== "25" && v !== " " && v.charCodeAt(0) < 0x80 && !HOST_CHARS.test(v)) {
      return `invalid URL escape ${goQuote(`%${hex}`)}`;
    }
    i += 2;
  }
  return undefined;
}

const validOptionalPort = (port: string) => port === "" || /^:[0-9]*$/.test(port);

/** Why Go's url.Parse rejects the string (as `parse "<url>": <reason>`), or undefined. */
export function goUrlParseError(raw: string): string | undefined {
  const hash = raw.indexOf("#");
  const main = hash >= 0 ? raw.slice(0, hash) : raw;
  const err = parseError(main);
  // A failure before the fragment quotes the URL without it; a bad fragment, the whole URL.
  if (err !== undefined) return `parse ${goQuote(redactUrl(main))}: ${err}`;
  const e = hash >= 0 ? unescapeError(raw.slice(hash + 1)) : undefined;
  return e === undefined ? undefined : `parse ${goQuote(redactUrl(raw))}: ${e}`;
}

/**
 * The URL or address with the password of its userinfo replaced by "xxxxx" (Go's
 * URL.Redacted), for messages. Works on strings url.Parse refuses too (a bad port, a
 * scheme-less `user:pw@host:port` target), since those are the ones errors quote; the
 * userinfo ends at the last "@" before the path, as in url.Parse.
 */
export function redactUrl(s: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(s)?.[0] ?? "";
  const rest = s.slice(scheme.length);
  const end = rest.search(/[/?#]/);
  const authority = end < 0 ? rest : rest.slice(0, end);
  const at = authority.lastIndexOf("@");
  const colon = authority.indexOf(":");
  if (at < 0 || colon < 0 || colon > at) return s;
  return `${scheme}${authority.slice(0, colon)}:xxxxx${rest.slice(at)}`;
}

function parseError(raw: string): string | undefined {
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return "net/url: invalid control character in URL";
  }
  if (raw === "" || raw === "*") return undefined;
  let rest = raw;
  let scheme = "";
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i]!;
    if (/[a-zA-Z]/.test(c)) continue;
    if (/[0-9+\-.]/.test(c)) {
      if (i === 0) break;
      continue;
    }
    if (c === ":") {
      if (i === 0) return "missing protocol scheme";
      scheme = rest.slice(0, i).toLowerCase();
      rest = rest.slice(i + 1);
    }
    break;
  }
  const q = rest.indexOf("?");
  if (q >= 0) rest = rest.slice(0, q);
  if (!rest.startsWith("/")) {
    if (scheme !== "") return undefined; // opaque
    const segment = rest.split("/")[0]!;
    if (segment.includes(":")) return "first path segment in URL cannot contain colon";
  }
  let path = rest;
  if ((scheme !== "" || !rest.startsWith("///")) && rest.startsWith("//")) {
    let authority = rest.slice(2);
    const slash = authority.indexOf("/");
    path = slash >= 0 ? authority.slice(slash) : "";
    if (slash >= 0) authority = authority.slice(0, slash);
    const at = authority.lastIndexOf("@");
    const hostErr = hostError(scheme, at >= 0 ? authority.slice(at + 1) : authority);
    if (hostErr) return hostErr;
    if (at >= 0) {
      const userinfo = authority.slice(0, at);
      if (!/^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/.test(userinfo)) return "net/url: invalid userinfo";
      const e = unescapeError(userinfo);
      if (e) return e;
    }
  }
  return unescapeError(path);
}

function hostError(scheme: string, host: string): string | undefined {
  const open = host.lastIndexOf("[");
  if (open > 0) return "invalid IP-literal";
  if (open === 0) {
    const close = host.lastIndexOf("]");
    if (close < 0) return "missing ']' in host";
    const port = host.slice(close + 1);
    if (!validOptionalPort(port)) return `invalid port ${goQuote(port)} after host`;
    const name = host.slice(1, close);
    const zone = name.indexOf("%25");
    const addr = zone >= 0 ? name.slice(0, zone) : name;
    const e = unescapeError(addr, true) ?? (zone >= 0 ? zoneError(name.slice(zone)) : undefined);
    if (e) return e;
    if (isIPv4(addr)) return "invalid IP-literal";
    // netip.ParseAddr explains its refusals in several ways; this gives its most common one.
    if (!isIPv6(addr)) return `invalid host: ParseAddr(${goQuote(zone >= 0 ? name : addr)}): unable to parse IP`;
    return undefined;
  }
  const first = host.indexOf(":");
  if (first >= 0) {
    const last = host.lastIndexOf(":");
    const i = last !== first && (scheme === "http" || scheme === "https") ? first : last;
    const port = host.slice(i);
    if (!validOptionalPort(port)) return `invalid port ${goQuote(port)} after host`;
  }
  return unescapeError(host, true);
}

function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

function isIPv6(s: string): boolean {
  let body = s;
  const lastColon = s.lastIndexOf(":");
  if (lastColon >= 0 && s.slice(lastColon + 1).includes(".")) {
    if (!isIPv4(s.slice(lastColon + 1))) return false;
    body = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = body.split("::");
  if (halves.length > 2) return false;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const all = halves.flatMap(groups);
  if (!all.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return false;
  return halves.length === 2 ? all.length < 8 : all.length === 8;
}
