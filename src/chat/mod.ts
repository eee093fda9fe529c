/**
 * The chat's state and rules, as the server and the wire formats see them.
 *
 * @module
 */

export { Chatroom, type ChatroomOptions } from "./chatroom.ts";
export type { ChatAuth } from "./sign_in.ts";
export type { IdentityRefusal } from "./gate.ts";
export type { Moderation } from "./moderation.ts";
export type { Outcome } from "./outcome.ts";
export { LOBBY, type Room } from "./room.ts";
export type { User } from "./user.ts";
