/**
 * Who a client is, in `auth.mode: token`: a JSON Web Token signed by the
 * deployer's application names the user (`auth.name_claim`) and their roles
 * (`auth.roles_claim`). Tokens are checked with `jose` against the HS256
 * secret or the public key of the configured algorithm; what is wrong with a
 * token is said in words a client developer can act on.
 *
 * @module
 */

import {
  errors as joseErrors,
  importSPKI,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyOptions,
  type KeyObject,
} from "jose";
import type { AuthConfig, TokenAlgorithm } from "../config/mod.ts";
import { nameProblem } from "../text/names.ts";

/** What a moderator or an admin may do that others may not; admins outrank moderators. */
export type Role = "moderator" | "admin";

/** How much a role may do: nobody acts on someone of their rank or higher. */
export function rank(roles: ReadonlySet<Role>): number {
  if (roles.has("admin")) return 2;
  return roles.has("moderator") ? 1 : 0;
}

/** Who a verified token says the client is. */
export interface Identity {
  readonly name: string;
  readonly roles: ReadonlySet<Role>;
  /** When the token stops being valid (milliseconds since the Unix epoch). */
  readonly expiresAt: number | undefined;
}

/** A token that does not prove who its holder is; the message says why. */
export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenError";
  }
}

/** Checks tokens; one per server, made once at start. */
export interface TokenVerifier {
  /** Who `token` names, or a {@linkcode TokenError} saying what is wrong with it. */
  verify(token: string): Promise<Identity>;
}

/** A public key file that cannot be used; the message names the problem. */
export class KeyFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyFileError";
  }
}

type VerificationKey = Uint8Array | CryptoKey | KeyObject;

/** The key tokens are checked with: the HS256 secret, or the public key read from its file. */
async function verificationKey(
  algorithm: TokenAlgorithm,
  secret: string | undefined,
  publicKeyPem: string | undefined,
): Promise<VerificationKey> {
  if (algorithm === "HS256") return new TextEncoder().encode(secret);
  try {
    return await importSPKI(publicKeyPem ?? "", algorithm);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new KeyFileError(`is not a PEM public key (SPKI) for ${algorithm}: ${reason}`);
  }
}

/** The roles a token's claim grants; anything else in it is ignored. */
function readRoles(claim: unknown): ReadonlySet<Role> {
  const listed = typeof claim === "string"
    ? claim.split(/[\s,]+/)
    : Array.isArray(claim)
    ? claim
    : [];
  return new Set(listed.filter((role): role is Role => role === "moderator" || role === "admin"));
}

/** What a verification failure means to the client. */
function explain(error: unknown, nameClaim: string): TokenError {
  if (error instanceof TokenError) return error;
  if (error instanceof joseErrors.JWTExpired) return new TokenError("the token has expired");
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    return new TokenError(`the token's "${error.claim}" claim is not valid (${error.reason})`);
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new TokenError("the token's signature is not valid");
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) {
    return new TokenError("the token is signed with an algorithm this server does not accept");
  }
  if (error instanceof joseErrors.JOSEError) {
    return new TokenError(`the token is not a valid signed JWT naming the user in "${nameClaim}"`);
  }
  return new TokenError("the token could not be checked");
}

/** Seconds a token without `iat` may expire later than `max` from now: clocks disagree. */
const CLOCK_TOLERANCE = 60;

/**
 * Refuses a token valid for longer than `max` seconds: from its `iat` to its
 * `exp`, or from `now` (seconds) to its `exp` (which also holds a token whose
 * `iat` lies in the future). A stolen token is only as good as its life.
 */
function refuseLongLived(payload: JWTPayload, max: number, now: number): void {
  const { iat, exp } = payload;
  if (exp === undefined) return;
  if (iat !== undefined && exp - iat > max) {
    throw new TokenError(
      `the token is valid for ${
        exp - iat
      } s from "iat" to "exp", longer than the ${max} s this server accepts`,
    );
  }
  if (exp - now > max + CLOCK_TOLERANCE) {
    throw new TokenError(
      `the token expires more than ${max} s from now, later than this server accepts`,
    );
  }
}

/**
 * The verifier of `auth`, or `undefined` in open mode. `publicKeyPem` is the
 * content of `auth.public_key_file`; a key that cannot be used throws
 * {@linkcode KeyFileError}.
 */
export async function createVerifier(
  auth: AuthConfig,
  publicKeyPem?: string,
): Promise<TokenVerifier | undefined> {
  if (auth.mode === "open") return undefined;
  const key = await verificationKey(auth.algorithm, auth.secret, publicKeyPem);
  const options: JWTVerifyOptions = {
    algorithms: [auth.algorithm],
    issuer: auth.issuer,
    audience: auth.audience,
    // A token that never expires could never be taken back.
    requiredClaims: ["exp"],
  };
  return {
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, key, options);
        const name = payload[auth.nameClaim];
        if (typeof name !== "string" || name === "") {
          throw new TokenError(`the token has no "${auth.nameClaim}" claim naming the user`);
        }
        const problem = nameProblem(name);
        if (problem !== undefined) {
          throw new TokenError(`the name in the token cannot be used: ${problem}`);
        }
        refuseLongLived(payload, auth.maxTokenLifetime, Date.now() / 1000);
        return {
          name,
          roles: readRoles(payload[auth.rolesClaim]),
          expiresAt: payload.exp === undefined ? undefined : payload.exp * 1000,
        };
      } catch (error) {
        throw explain(error, auth.nameClaim);
      }
    },
  };
}
