/**
 * The browser client's files, read once at startup and served from memory
 * with their content type and an ETag, so browsers revalidate cheaply, and
 * with a Content-Security-Policy: the client loads its own script and styles
 * only (it has nothing inline), talks only to its own host, and is shown in
 * no other site's frame unless `limits.frame_ancestors` lists that site.
 *
 * @module
 */

import { eTag, ifNoneMatch } from "@std/http/etag";
import { contentType } from "@std/media-types/content-type";
import { extname, fromFileUrl, join } from "@std/path";

/** One file ready to serve. */
export interface StaticFile {
  readonly body: Uint8Array<ArrayBuffer>;
  readonly contentType: string;
  readonly etag: string;
}

/** Files by URL path (`/` for `index.html`). */
export type StaticFiles = ReadonlyMap<string, StaticFile>;

/** The folder of the browser client, next to `src/`. */
export const PUBLIC_DIR: string = fromFileUrl(new URL("../../public", import.meta.url));

/** Reads every file of a known type directly inside `dir`. */
export async function loadStaticFiles(dir: string = PUBLIC_DIR): Promise<StaticFiles> {
  const files = new Map<string, StaticFile>();
  for await (const entry of Deno.readDir(dir)) {
    const type: string | undefined = contentType(extname(entry.name));
    if (!entry.isFile || type === undefined) continue;
    const body = await Deno.readFile(join(dir, entry.name));
    const path = entry.name === "index.html" ? "/" : `/${entry.name}`;
    files.set(path, { body, contentType: type, etag: await eTag(body) });
  }
  return files;
}

/** A host as a URL holds it (`name`, `name:port`, `[v6]:port`): safe in a policy. */
const PLAIN_HOST = /^[A-Za-z0-9.\-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$/;

/**
 * The security headers of the client's files, served as `host`, which only
 * the origins of `frameAncestors` may frame (none when empty).
 */
export function pageSecurityHeaders(
  host: string,
  frameAncestors: readonly string[],
): Record<string, string> {
  // 'self' covers ws: and wss: of the page's host in CSP 3; naming them serves older browsers.
  const sockets = PLAIN_HOST.test(host) ? ` ws://${host} wss://${host}` : "";
  const policy = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    // The stylesheet draws an icon from a data: URL.
    "img-src 'self' data:",
    `connect-src 'self'${sockets}`,
    "form-action 'self'",
    "base-uri 'none'",
    "object-src 'none'",
    `frame-ancestors ${frameAncestors.length === 0 ? "'none'" : frameAncestors.join(" ")}`,
  ].join("; ");
  return {
    "content-security-policy": policy,
    "x-content-type-options": "nosniff",
    // X-Frame-Options cannot list sites: it says DENY only when no site may frame the client.
    ...(frameAncestors.length === 0 ? { "x-frame-options": "DENY" } : {}),
  };
}

/**
 * Answers a GET or HEAD for `file`: 304 when the client's copy is current.
 * `security` are the headers of {@linkcode pageSecurityHeaders}.
 */
export function serveStatic(
  request: Request,
  file: StaticFile,
  security: Record<string, string>,
): Response {
  const headers = {
    "content-type": file.contentType,
    "cache-control": "no-cache",
    etag: file.etag,
    ...security,
  };
  if (!ifNoneMatch(request.headers.get("if-none-match"), file.etag)) {
    return new Response(null, { status: 304, headers });
  }
  // HEAD says how long the body would be, as GET does.
  if (request.method === "HEAD") {
    return new Response(null, {
      headers: { ...headers, "content-length": String(file.body.byteLength) },
    });
  }
  return new Response(file.body, { headers });
}
