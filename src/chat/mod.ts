/**
 * The chat's state and rules, as the server and the wire formats see them.
 *
 * @module
 */

export { Chatroom, type ChatroomOptions } from "./chatroom.ts";
export type { ChatAuth } from "./sign_in.ts";
export { API_MODERATOR, type Moderation, type Moderator, type Outcome } from "./moderation.ts";
export type * from "../vocabulary/events.ts";
export { LOBBY, type Room } from "./room.ts";
export type { User } from "./user.ts";
