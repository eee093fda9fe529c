/**
 * The browser client's files, read once at startup and served from memory
 * with their content type and an ETag, so browsers revalidate cheaply.
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

/** Answers a GET or HEAD for `file`: 304 when the client's copy is current. */
export function serveStatic(request: Request, file: StaticFile): Response {
  const headers = {
    "content-type": file.contentType,
    "cache-control": "no-cache",
    etag: file.etag,
    "x-content-type-options": "nosniff",
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
