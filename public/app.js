// The browser client: speaks protocol v2 (subprotocol "chat.v2"), resumes
// its session after a dropped connection or a reload, keeps unread counts per
// room and private conversations per person, and queues what is typed while
// offline. Plain modules, no build step. See docs/protocol.md for the messages.
//
// Where the server asks for signed tokens, the application that signs users in
// opens this page as /#auth=<token> (the fragment never reaches a server or
// its logs), and renews it by setting a fresh #auth=<token>: the page sends it
// as a v2 refresh, or signs in again if the old one had already run out.

const PROTOCOL = "chat.v2";
const SESSION_KEY = "chat.session";
const CONVERSATIONS_KEY = "chat.conversations";
const ROOMS_REFRESH_MS = 5000;
const MAX_BACKOFF_MS = 30000;
const MAX_SHOWN_MESSAGES = 500;
const MAX_KEPT_PRIVATES = 200;
const MAX_QUEUED = 20;
const MAX_HINTS = 8;
/** Messages from one sender this close together show the sender once. */
const RUN_GAP_MS = 5 * 60_000;
/** How long "is typing" shows after the last word of it, and how often we send ours at most. */
const TYPING_SHOWN_MS = 6000;
const TYPING_EVERY_MS = 2000;

const $ = (id) => document.getElementById(id);
const view = {
  status: $("status"),
  whoami: $("whoami"),
  me: $("me"),
  jump: $("jump"),
  typing: $("typing"),
  currentRoom: $("current-room"),
  topic: $("topic"),
  rooms: $("rooms"),
  conversations: $("conversations"),
  noConversations: $("no-conversations"),
  members: $("members"),
  messages: $("messages"),
  conversation: $("conversation"),
  input: $("input"),
  hints: $("hints"),
  hintCount: $("hint-count"),
  sendNote: $("send-note"),
  sendForm: $("send-form"),
  joinForm: $("join-form"),
  newRoom: $("new-room"),
  roomsToggle: $("rooms-toggle"),
  roomsToggleUnread: $("rooms-toggle-unread"),
  membersToggle: $("members-toggle"),
  membersToggleCount: $("members-toggle-count"),
  scrim: $("scrim"),
};

const state = {
  name: undefined,
  /** The resume token the server gave this session. */
  token: undefined,
  /** The signed sign-in token from the page's #auth=, when the server asks for one. */
  auth: undefined,
  /** The sign-in token last sent on the open socket (in its first frame or a refresh). */
  sentAuth: undefined,
  /** While a refresh awaits its answer: the token to go back to if it is refused. */
  refreshing: undefined,
  /** Whether the server closed the session for want of a valid sign-in token. */
  signedOut: false,
  room: "lobby",
  /** Where reading stopped, per room: the log's epoch and the last seq seen. */
  seen: new Map(),
  /** Token mode: the last private message seen in the account's inbox, `{epoch, seq}`. */
  privates: undefined,
  rooms: [],
  members: [],
  /** Private messages per person, oldest first; kept for the tab's session. */
  conversations: new Map(),
  /** Private messages not read yet, per person. */
  privateUnread: new Map(),
  /** Whom the conversation view shows, when it is open. */
  peer: undefined,
  /** The conversation open before a reload, opened again once welcomed. */
  restorePeer: undefined,
  /** Whether the page was out of sight when the current unread part began. */
  away: false,
  /** The server's commands, from its `help` answer, for the hints. */
  commands: [],
  /** Whether the next `help` event answers our own request for the hints (not shown). */
  helpForHints: false,
  /** What we may moderate, from the server: 0, or 1 and more for moderators and admins. */
  rank: 0,
  /** The message of ours being edited in the box, while one is: its id and its list item. */
  editing: undefined,
  /** Who is typing in the room, each with the timer that ends it. */
  typists: new Map(),
  /** When we last told the room we were typing. */
  typingSentAt: 0,
  /** What was sent while offline, with its "waiting to send" line, sent on reconnecting. */
  queued: [],
  hintIndex: -1,
  /** Set by Escape: the hints stay closed until the text changes. */
  hintsDismissed: false,
  socket: undefined,
  /** Whether the session is welcomed on the open socket. */
  ready: false,
  attempt: 0,
};

// ---- storage: the session and the conversations survive a reload of the tab ----

function saveSession() {
  const seen = Object.fromEntries(state.seen);
  sessionStorage.setItem(
    SESSION_KEY,
    JSON.stringify({
      name: state.name,
      token: state.token,
      auth: state.auth,
      room: state.room,
      peer: state.peer,
      seen,
      privates: state.privates,
    }),
  );
}

function loadJson(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key) ?? "null");
  } catch {
    return null;
  }
}

function saveConversations() {
  sessionStorage.setItem(CONVERSATIONS_KEY, JSON.stringify([...state.conversations]));
}

// ---- the connection ----

function setStatus(text) {
  view.status.textContent = text;
}

function send(request) {
  if (state.socket?.readyState !== WebSocket.OPEN || !state.ready) return false;
  state.socket.send(JSON.stringify(request));
  return true;
}

function connect(start) {
  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url, PROTOCOL);
  state.socket = socket;
  state.ready = false;
  socket.addEventListener("open", () => {
    setStatus("Connected");
    state.sentAuth = start.auth;
    socket.send(JSON.stringify(start));
  });
  socket.addEventListener("message", (event) => {
    const data = JSON.parse(event.data);
    for (const item of Array.isArray(data) ? data : [data]) handle(item);
  });
  socket.addEventListener("close", (event) => {
    if (state.socket !== socket) return;
    state.socket = undefined;
    state.ready = false;
    clearTyping();
    if (event.code === 4000) {
      setStatus(
        event.reason === "signed in on too many devices"
          ? "Signed out here: your account is open on too many other devices."
          : "This session continues in another window.",
      );
      return;
    }
    if (event.code === 4003) {
      setStatus(`Removed by a moderator${event.reason ? `: ${event.reason}` : ""}.`);
      return;
    }
    if (event.code === 4001) {
      // A token that came after the refused one was sent is worth a try.
      if (state.auth !== undefined && state.auth !== state.sentAuth) {
        connect(state.name === undefined ? { type: "hello", auth: state.auth } : resumeRequest());
        return;
      }
      // The same token would fail the same way: forget it and wait for a fresh #auth=.
      state.signedOut = true;
      state.auth = undefined;
      state.refreshing = undefined;
      saveSession();
      setStatus(
        state.sentAuth === undefined
          ? "This server needs a sign-in: open this page from the application that signs you in."
          : "Your sign-in has ended. Sign in again to go on.",
      );
      return;
    }
    scheduleReconnect();
  });
}

function scheduleReconnect() {
  const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** state.attempt);
  const delay = base / 2 + Math.random() * base / 2;
  state.attempt++;
  setStatus(`Disconnected. Reconnecting in ${Math.ceil(delay / 1000)} s…`);
  setTimeout(() => {
    setStatus("Reconnecting…");
    connect(resumeRequest());
  }, delay);
}

/** The frame that picks our session up where we stopped reading. */
function resumeRequest() {
  const position = state.seen.get(state.room);
  return {
    type: "resume",
    name: state.name,
    token: state.token,
    auth: state.auth,
    room: { name: state.room, epoch: position?.epoch, seq: position?.seq ?? 0 },
    privates: state.privates,
  };
}

function requestRooms() {
  send({ type: "rooms", seen: Object.fromEntries(state.seen) });
}

// ---- what the server sends ----

function handle(event) {
  switch (event.type) {
    case "welcome":
      // Back-off starts again once a session is under way, not when a socket merely opens.
      state.attempt = 0;
      state.ready = true;
      state.refreshing = undefined;
      state.name = event.name;
      state.token = event.token;
      setRank(event.rank ?? 0);
      noteEpoch(event.room, event.epoch);
      enterRoom(event.room);
      view.whoami.hidden = false;
      if (state.restorePeer !== undefined) openConversation(state.restorePeer);
      state.restorePeer = undefined;
      show(view.messages, event, "system", event.text);
      send({ type: "members" });
      requestRooms();
      if (state.commands.length === 0) state.helpForHints = send({ type: "help" });
      sendQueued();
      break;
    case "history":
      noteEpoch(event.room, event.epoch);
      noteSeen(event.room, event.seq);
      show(view.messages, event, classesOf(event), event.text, event.from);
      break;
    case "edit":
    case "delete":
      noteEpoch(event.room, event.epoch);
      noteSeen(event.room, event.seq);
      if (event.room === state.room) applyChange(event);
      break;
    case "gap":
      noteEpoch(event.room, event.epoch);
      show(view.messages, event, "gap", event.text);
      break;
    case "message":
      noteEpoch(event.room, event.epoch);
      noteSeen(event.room, event.seq);
      if (event.room === state.room) stopTyping(event.from);
      show(view.messages, event, classesOf(event), event.text, event.from);
      break;
    case "typing":
      noteTyping(event);
      break;
    case "private":
      receivePrivate(event);
      break;
    case "presence":
      if (event.room === state.room) stopTyping(event.oldName ?? event.from);
      updateMembers(event);
      show(view.messages, event, "presence", event.text);
      break;
    case "members":
      noteEpoch(event.room, event.epoch);
      if (event.room !== state.room) enterRoom(event.room);
      state.members = [...event.members];
      renderMembers();
      requestRooms();
      break;
    case "rooms":
      state.rooms = event.rooms;
      renderRooms();
      break;
    case "system":
      if (event.rank !== undefined) setRank(event.rank);
      show(view.messages, event, "system", event.text);
      break;
    case "help":
      if (state.helpForHints) {
        state.helpForHints = false;
        state.commands = event.commands;
        renderHints();
      } else {
        show(view.messages, event, "system", event.text);
      }
      break;
    case "error":
      if (event.code === "name_refused") setStatus(event.text);
      if (event.code === "unauthorized" && state.refreshing !== undefined) {
        // A refused refresh leaves the session on the token it had.
        state.auth = state.sentAuth = state.refreshing.previous;
        state.refreshing = undefined;
        saveSession();
      }
      // Without any token the server's reason speaks of the protocol; say it for people.
      show(
        currentList(),
        event,
        "error",
        event.code === "unauthorized" && state.auth === undefined
          ? "This chat needs you to sign in: open it from the application that signs you in."
          : event.text,
      );
      break;
  }
}

function classesOf(event) {
  const classes = [event.type];
  if (event.from === state.name) classes.push("self");
  if (event.emote) classes.push("emote");
  if (event.removed) classes.push("removed");
  return classes.join(" ");
}

// ---- messages taken back: edited and removed ----

function itemOf(id) {
  return [...view.messages.querySelectorAll("li[data-id]")].find((item) => item.dataset.id === id);
}

/** Shows an edit or a removal on the message it changes, if it is on the page. */
function applyChange(event) {
  const item = itemOf(event.target);
  if (item === undefined || item.classList.contains("removed")) return;
  if (event.type === "edit") {
    setText(item, event.text, true);
  } else {
    item.classList.add("removed");
    item.querySelector(".actions")?.remove();
    setText(item, "message removed", false);
    if (state.editing?.id === event.target) stopEditing();
  }
}

/** The text of a message's item, marked "(edited)" when it was. */
function setText(item, text, edited) {
  const span = item.querySelector(".text");
  span.textContent = text;
  item.querySelector(".edited-mark")?.remove();
  if (!edited) return;
  const mark = document.createElement("span");
  mark.className = "edited-mark";
  mark.textContent = " (edited)";
  span.after(mark);
}

/** A moderator may remove others' messages: their Delete buttons come and go with the rank. */
function setRank(rank) {
  if (rank === state.rank) return;
  state.rank = rank;
  for (const item of view.messages.querySelectorAll("li[data-id]:not(.self):not(.removed)")) {
    item.querySelector(".actions")?.remove();
    if (rank > 0) item.append(actionsFor(item, false));
  }
}

/** Edit and Delete for one of our own messages; Delete alone for someone else's, to a moderator. */
function actionsFor(item, own) {
  const actions = document.createElement("span");
  actions.className = "actions";
  const offered = own ? [["edit", "Edit"], ["delete", "Delete"]] : [["delete", "Delete"]];
  for (const [action, label] of offered) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = action;
    button.textContent = label;
    button.setAttribute(
      "aria-label",
      own ? `${label} your message` : `${label} the message of ${item.dataset.from}`,
    );
    button.addEventListener("click", () => {
      if (action === "edit") startEditing(item);
      else if (confirm("Delete this message for everyone?")) {
        send({ type: "delete", id: item.dataset.id });
      }
    });
    actions.append(button);
  }
  return actions;
}

function startEditing(item) {
  state.editing = { id: item.dataset.id, item };
  view.input.value = item.querySelector(".text").textContent;
  view.sendNote.textContent = "Editing your message: Enter saves it, Escape leaves it as it was.";
  view.input.focus();
}

function stopEditing() {
  state.editing = undefined;
  view.input.value = "";
  renderQueue();
}

/** Our newest message on the page that can still be edited (ArrowUp in an empty box). */
function lastOwnItem() {
  return [...view.messages.querySelectorAll("li.self[data-id]:not(.removed)")].at(-1);
}

function enterRoom(room) {
  const changed = state.room !== room;
  if (changed) {
    view.messages.replaceChildren();
    clearTyping();
  }
  state.room = room;
  view.me.textContent = state.name;
  saveSession();
  // An open conversation stays open through a reconnect; moving to a room shows the room.
  if (changed || state.peer === undefined) openRoomView();
  else renderRooms();
}

/** Where reading stopped in the account's inbox (token mode), to resume after it. */
function notePrivatesSeen(event) {
  if (event.seq === undefined) return;
  const last = state.privates;
  if (last === undefined || last.epoch !== event.epoch || event.seq > last.seq) {
    state.privates = { epoch: event.epoch, seq: event.seq };
    saveSession();
  }
}

/** Seqs count within an epoch: a new one starts the count again. */
function noteEpoch(room, epoch) {
  if (epoch === undefined || state.seen.get(room)?.epoch === epoch) return;
  state.seen.set(room, { epoch, seq: 0 });
}

function noteSeen(room, seq) {
  const position = state.seen.get(room) ?? { epoch: undefined, seq: 0 };
  if (seq > position.seq) state.seen.set(room, { ...position, seq });
  saveSession();
}

function updateMembers(event) {
  if (event.room !== state.room) return;
  if (event.action === "join" && !state.members.includes(event.from)) {
    state.members.push(event.from);
  }
  if (event.action === "leave") state.members = state.members.filter((name) => name !== event.from);
  if (event.action === "rename") {
    state.members = state.members.map((name) => name === event.oldName ? event.from : name);
    if (event.oldName === state.name) {
      state.name = event.from;
      view.me.textContent = state.name;
      saveSession();
    }
  }
  renderMembers();
  renderRooms();
}

function receivePrivate(event) {
  const peer = event.from === state.name ? event.to : event.from;
  const kept = state.conversations.get(peer) ?? [];
  const known = kept.some((earlier) => earlier.id === event.id);
  if (!known) {
    kept.push(event);
    state.conversations.set(peer, kept.slice(-MAX_KEPT_PRIVATES));
    saveConversations();
  }
  notePrivatesSeen(event);
  // Replayed from the account's inbox (on connect): kept in its conversation, not news.
  if (event.history) {
    if (!known && state.peer === peer) openConversation(peer);
    renderConversations();
    return;
  }
  const mine = event.from === state.name;
  show(view.messages, event, "private", event.text, mine ? `to ${event.to}` : `from ${event.from}`);
  if (state.peer === peer) {
    show(view.conversation, event, classesOf(event), event.text, event.from);
  } else if (!mine) {
    state.privateUnread.set(peer, (state.privateUnread.get(peer) ?? 0) + 1);
  }
  renderConversations();
  // The Rooms button's badge counts private messages too: at once, not at the next listing.
  renderRooms();
}

// ---- showing messages ----

/** The message list on screen: the room's, or the open conversation's. */
function currentList() {
  return state.peer === undefined ? view.messages : view.conversation;
}

function show(list, event, classes, text, from) {
  const atBottom = isAtBottom(list);
  const item = messageItem(event, classes, text, from);
  if (from !== undefined && document.hidden && !state.away) {
    // The first message that arrives out of sight starts the unread part.
    state.away = true;
    list.querySelector(".new-marker")?.remove();
    list.append(separator("new-marker", "New messages"));
  }
  markDay(list, item);
  list.append(item);
  trim(list, atBottom);
}

/** A line across the list with a label: a new day, or where the unread part starts. */
function separator(className, label) {
  const item = document.createElement("li");
  item.className = className;
  item.textContent = label;
  return item;
}

/** The label of the day of `date`: Today, Yesterday, or the date. */
function dayLabel(date) {
  const days = Math.round((startOfDay(new Date()) - startOfDay(date)) / 86_400_000);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  return date.toLocaleDateString([], { weekday: "long", day: "numeric", month: "long" });
}

function startOfDay(date) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
}

/**
 * Puts a day line before `item` when it starts a new day in `list`, and
 * shows the sender once for a run of their messages.
 */
function markDay(list, item) {
  const previous = [...list.children].reverse().find((other) => other.dataset.at !== undefined);
  const at = Number(item.dataset.at);
  const day = startOfDay(new Date(at));
  if (previous === undefined || startOfDay(new Date(Number(previous.dataset.at))) !== day) {
    list.append(separator("day", dayLabel(new Date(at))));
    return;
  }
  const last = list.lastElementChild;
  const sameRun = last === previous && item.dataset.from !== undefined &&
    previous.dataset.from === item.dataset.from && previous.dataset.kind === item.dataset.kind &&
    at - Number(previous.dataset.at) < RUN_GAP_MS;
  if (sameRun) item.classList.add("continued");
}

/** Two letters for a name: its first letter and the next capital or word's, else its second. */
function initials(name) {
  const letters = [...name.replace(/^to |^from /, "")];
  const next =
    letters.slice(1).find((char, i) => /\p{Lu}/u.test(char) || /[\s_.-]/.test(letters[i])) ??
      letters[1] ?? "";
  return (letters[0] ?? "?").toUpperCase() + next.toLowerCase();
}

/** A hue of a name's own, the same on every page. */
function hueOf(name) {
  let hash = 0;
  for (const char of name) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return hash % 360;
}

function messageItem(event, classes, text, from) {
  const item = document.createElement("li");
  item.className = classes;
  item.dataset.kind = classes;
  if (event.seq !== undefined) item.dataset.id = event.id;
  const sentAt = new Date(event.sentAt);
  item.dataset.at = String(Number.isNaN(sentAt.getTime()) ? Date.now() : sentAt.getTime());
  if (from !== undefined) {
    item.dataset.from = from;
    const avatar = document.createElement("span");
    avatar.className = "avatar";
    avatar.setAttribute("aria-hidden", "true");
    avatar.textContent = initials(from);
    avatar.style.setProperty("--hue", String(hueOf(from.replace(/^to |^from /, ""))));
    item.append(avatar);
  }
  const time = document.createElement("time");
  time.dateTime = event.sentAt;
  time.textContent = new Date(event.sentAt).toLocaleTimeString([], {
    hour: "2-digit",
    minute: "2-digit",
  });
  item.append(time);
  if (from !== undefined) {
    const sender = document.createElement("span");
    sender.className = "from";
    sender.textContent = event.emote ? `* ${from}` : `${from}:`;
    item.append(sender);
  }
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = event.removed ? "message removed" : text;
  item.append(body);
  if (event.edited) setText(item, text, true);
  if (event.seq !== undefined && !event.removed && (from === state.name || state.rank > 0)) {
    item.append(actionsFor(item, from === state.name));
  }
  return item;
}

/** Whether `list` shows its newest line (give or take a few pixels). */
function isAtBottom(list) {
  return list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
}

/**
 * Keeps a list short, and at its newest line when it was there before the
 * line came; otherwise offers to jump there.
 */
function trim(list, atBottom) {
  while (list.childElementCount > MAX_SHOWN_MESSAGES) list.firstElementChild.remove();
  // A run cut at its top shows its sender again.
  list.querySelector(":scope > li:not(.day, .new-marker)")?.classList.remove("continued");
  if (atBottom) list.lastElementChild.scrollIntoView({ block: "end" });
  renderJump();
}

/** The "jump to newest" button shows while the list on screen is scrolled up. */
function renderJump() {
  const list = currentList();
  view.jump.hidden = list.hidden || isAtBottom(list);
}

view.jump.addEventListener("click", () => {
  const list = currentList();
  list.lastElementChild?.scrollIntoView({ block: "end" });
  renderJump();
  list.focus();
});

for (const list of [view.messages, view.conversation]) {
  list.addEventListener("scroll", renderJump, { passive: true });
}

// Back in sight: the unread part stays marked until the page is next left.
document.addEventListener("visibilitychange", () => {
  if (document.hidden) state.away = false;
});

// ---- who is typing, here and in the message box ----

function noteTyping(event) {
  if (event.room !== state.room || event.from === state.name) return;
  clearTimeout(state.typists.get(event.from));
  state.typists.set(event.from, setTimeout(() => stopTyping(event.from), TYPING_SHOWN_MS));
  renderTyping();
}

function stopTyping(name) {
  if (!state.typists.has(name)) return;
  clearTimeout(state.typists.get(name));
  state.typists.delete(name);
  renderTyping();
}

function clearTyping() {
  for (const timer of state.typists.values()) clearTimeout(timer);
  state.typists.clear();
  renderTyping();
}

function renderTyping() {
  const names = [...state.typists.keys()];
  view.typing.textContent = names.length === 0
    ? ""
    : names.length === 1
    ? `${names[0]} is typing…`
    : names.length === 2
    ? `${names[0]} and ${names[1]} are typing…`
    : "Several people are typing…";
  // It is about the room: a private conversation does not show it.
  view.typing.hidden = state.peer !== undefined;
}

/** Tells the room we are typing a message (not a command), at most every 2 s. */
function sendTyping() {
  const text = view.input.value;
  if (state.peer !== undefined || text.trim() === "" || text.startsWith("!")) return;
  const now = Date.now();
  if (now - state.typingSentAt < TYPING_EVERY_MS) return;
  if (send({ type: "typing" })) state.typingSentAt = now;
}

// ---- the views: a room, or a private conversation ----

function openRoomView() {
  state.peer = undefined;
  view.messages.hidden = false;
  view.conversation.hidden = true;
  view.currentRoom.textContent = `#${state.room}`;
  view.input.placeholder = "Message, or ! for commands";
  document.title = `${state.room} · Chat`;
  saveSession();
  renderJump();
  renderTopic();
  renderRooms();
  renderConversations();
  renderTyping();
}

function openConversation(peer) {
  state.peer = peer;
  state.privateUnread.delete(peer);
  view.messages.hidden = true;
  view.conversation.hidden = false;
  view.currentRoom.textContent = `Private with ${peer}`;
  view.topic.textContent = "";
  view.input.placeholder = `To ${peer}, privately`;
  document.title = `${peer} · Chat`;
  view.conversation.replaceChildren();
  for (const event of state.conversations.get(peer) ?? []) {
    const item = messageItem(event, classesOf(event), event.text, event.from);
    markDay(view.conversation, item);
    view.conversation.append(item);
  }
  view.conversation.lastElementChild?.scrollIntoView({ block: "end" });
  saveSession();
  renderJump();
  renderRooms();
  renderConversations();
  renderTyping();
}

function renderTopic() {
  const topic = state.rooms.find((room) => room.name === state.room)?.topic;
  view.topic.textContent = topic === undefined ? "" : `: ${topic}`;
}

/**
 * Replaces a list's items, keeping the keyboard focus on the item with the
 * same key, so a refresh never takes focus away from someone using the list.
 */
function replaceItems(list, items) {
  const focusedKey = list.contains(document.activeElement)
    ? document.activeElement.dataset.key
    : undefined;
  list.replaceChildren(...items);
  if (focusedKey !== undefined) {
    list.querySelector(`[data-key="${CSS.escape(focusedKey)}"]`)?.focus();
  }
}

function listButton(key, label, { current = false, count, unread = 0, onClick }) {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.key = key;
  button.setAttribute("aria-current", String(current));
  const name = document.createElement("span");
  name.className = "label";
  name.textContent = label;
  button.append(name);
  // How many people are in a room: a figure of a person and the number, apart from the badge.
  if (count !== undefined && count > 0) {
    const counted = document.createElement("span");
    counted.className = "count";
    counted.textContent = String(count);
    counted.title = `${count} ${count === 1 ? "person" : "people"} here`;
    counted.setAttribute("aria-label", counted.title);
    button.append(counted);
  }
  if (unread > 0) {
    const badge = document.createElement("span");
    badge.className = "unread";
    badge.textContent = String(unread);
    badge.setAttribute("aria-label", `${unread} unread`);
    button.append(badge);
  }
  button.addEventListener("click", onClick);
  const item = document.createElement("li");
  item.append(button);
  return item;
}

function renderRooms() {
  let unreadElsewhere = 0;
  const items = state.rooms.map((room) => {
    const current = room.name === state.room;
    // The current room is being read; elsewhere, what the server counted after our position.
    const unread = current ? 0 : room.unread ?? 0;
    unreadElsewhere += unread;
    // Here, the member list itself: it is live, the listing is a few seconds old.
    const count = current ? state.members.length : room.members;
    return listButton(`room:${room.name}`, `#${room.name}`, {
      current: current && state.peer === undefined,
      count,
      unread,
      onClick: () => {
        closeDrawers();
        if (!current) send({ type: "join", room: room.name });
        else openRoomView();
        view.input.focus();
      },
    });
  });
  replaceItems(view.rooms, items);
  renderTopic();
  const privateUnread = [...state.privateUnread.values()].reduce((sum, n) => sum + n, 0);
  const total = unreadElsewhere + privateUnread;
  view.roomsToggleUnread.hidden = total === 0;
  view.roomsToggleUnread.textContent = String(total);
  view.roomsToggleUnread.setAttribute("aria-label", `${total} unread`);
}

function renderConversations() {
  const items = [...state.conversations.keys()].map((peer) =>
    listButton(`pm:${peer}`, peer, {
      current: state.peer === peer,
      unread: state.privateUnread.get(peer) ?? 0,
      onClick: () => {
        closeDrawers();
        openConversation(peer);
        view.input.focus();
      },
    })
  );
  replaceItems(view.conversations, items);
  view.noConversations.hidden = items.length > 0;
}

function renderMembers() {
  const items = state.members.map((name) =>
    listButton(`member:${name}`, name === state.name ? `${name} (you)` : name, {
      onClick: () => {
        closeDrawers();
        if (name === state.name) return view.input.focus();
        if (!state.conversations.has(name)) state.conversations.set(name, []);
        openConversation(name);
        view.input.focus();
      },
    })
  );
  replaceItems(view.members, items);
  view.membersToggleCount.textContent = String(state.members.length);
}

// ---- command hints: a listbox under the input's control (the combobox pattern) ----

function matchingCommands() {
  const text = view.input.value;
  if (state.hintsDismissed || !text.startsWith("!") || /\s/.test(text)) return [];
  const typed = text.slice(1).toLowerCase();
  return state.commands.filter(({ name }) => name.startsWith(typed)).slice(0, MAX_HINTS);
}

function renderHints() {
  const matches = matchingCommands();
  const open = matches.length > 0;
  state.hintIndex = Math.min(state.hintIndex, matches.length - 1);
  view.hints.hidden = !open;
  view.input.setAttribute("aria-expanded", String(open));
  const items = matches.map(({ name, usage, summary }, index) => {
    const item = document.createElement("li");
    item.id = `hint-${name}`;
    item.setAttribute("role", "option");
    item.setAttribute("aria-selected", String(index === state.hintIndex));
    const spelled = document.createElement("span");
    spelled.className = "usage";
    spelled.textContent = usage;
    item.append(spelled, summary);
    // Pressed without taking focus from the input.
    item.addEventListener("mousedown", (event) => {
      event.preventDefault();
      complete(name);
    });
    return item;
  });
  view.hints.replaceChildren(...items);
  const active = matches[state.hintIndex];
  if (active === undefined) view.input.removeAttribute("aria-activedescendant");
  else view.input.setAttribute("aria-activedescendant", `hint-${active.name}`);
  const said = open ? `${matches.length} ${matches.length === 1 ? "command" : "commands"}` : "";
  if (view.hintCount.textContent !== said) view.hintCount.textContent = said;
}

function complete(name) {
  view.input.value = `!${name} `;
  state.hintIndex = -1;
  renderHints();
  view.input.focus();
}

view.input.addEventListener("input", () => {
  state.hintIndex = -1;
  state.hintsDismissed = false;
  renderHints();
  sendTyping();
});

view.input.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.editing !== undefined) {
    event.stopPropagation();
    stopEditing();
    return;
  }
  if (event.key === "ArrowUp" && view.input.value === "" && state.peer === undefined) {
    const item = lastOwnItem();
    if (item !== undefined) {
      event.preventDefault();
      startEditing(item);
      return;
    }
  }
  const matches = matchingCommands();
  if (matches.length === 0) return;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    const step = event.key === "ArrowDown" ? 1 : -1;
    state.hintIndex = (state.hintIndex + step + matches.length) % matches.length;
    renderHints();
    view.hints.querySelector('[aria-selected="true"]')?.scrollIntoView({ block: "nearest" });
  } else if ((event.key === "Enter" || event.key === "Tab") && state.hintIndex >= 0) {
    event.preventDefault();
    complete(matches[state.hintIndex].name);
  } else if (event.key === "Tab" && matches.length === 1) {
    event.preventDefault();
    complete(matches[0].name);
  } else if (event.key === "Escape") {
    // Only the hints close: a drawer behind them stays as it is.
    event.stopPropagation();
    state.hintsDismissed = true;
    renderHints();
  }
});

// ---- sending, or queueing while offline ----

function requestFor(text) {
  if (text.startsWith("!")) return { type: "command", text };
  if (state.peer !== undefined) return { type: "pm", to: state.peer, text };
  return { type: "say", text };
}

function renderQueue() {
  const count = state.queued.length;
  view.sendNote.textContent = count === 0
    ? ""
    : `Offline: ${count} ${
      count === 1 ? "message" : "messages"
    } will be sent when the connection is back.`;
}

function sendQueued() {
  for (const { request, line } of state.queued.splice(0)) {
    line.remove();
    send(request);
  }
  renderQueue();
}

view.sendForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = view.input.value;
  if (text.trim() === "") return;
  if (state.editing !== undefined) {
    if (send({ type: "edit", id: state.editing.id, text })) stopEditing();
    return;
  }
  const request = requestFor(text);
  if (!send(request)) {
    if (state.signedOut) {
      // Nothing would send it: the text stays in the box until the sign-in is back.
      view.sendNote.textContent = state.sentAuth === undefined
        ? "Not sent: this chat needs you to sign in first."
        : "Not sent: your sign-in has ended. Sign in again, then send it.";
      return;
    }
    if (state.queued.length >= MAX_QUEUED) {
      view.sendNote.textContent = "Offline, and too much is waiting: try again when connected.";
      return;
    }
    const line = messageItem({ sentAt: new Date().toISOString() }, "pending", text, state.name);
    currentList().append(line);
    state.queued.push({ request, line });
    // The note under the box takes room too: scroll once it is there.
    renderQueue();
    line.scrollIntoView({ block: "end" });
  }
  view.input.value = "";
  renderHints();
});

view.joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const room = view.newRoom.value.trim();
  if (room !== "" && send({ type: "join", room })) {
    view.newRoom.value = "";
    closeDrawers();
    view.input.focus();
  }
});

// ---- drawers on narrow screens ----

function setDrawer(which, open) {
  const toggle = which === "rooms" ? view.roomsToggle : view.membersToggle;
  document.body.classList.toggle(`${which}-open`, open);
  toggle.setAttribute("aria-expanded", String(open));
  const anyOpen = document.body.classList.contains("rooms-open") ||
    document.body.classList.contains("members-open");
  view.scrim.hidden = !anyOpen;
  if (open) $(toggle.getAttribute("aria-controls")).querySelector("button, input")?.focus();
}

function closeDrawers() {
  for (const which of ["rooms", "members"]) {
    if (document.body.classList.contains(`${which}-open`)) setDrawer(which, false);
  }
}

for (const [which, toggle] of [["rooms", view.roomsToggle], ["members", view.membersToggle]]) {
  toggle.addEventListener("click", () => {
    const open = !document.body.classList.contains(`${which}-open`);
    closeDrawers();
    setDrawer(which, open);
    if (!open) toggle.focus();
  });
}

/** The open drawer's toggle, if a drawer is open. */
function openToggle() {
  if (document.body.classList.contains("rooms-open")) return view.roomsToggle;
  if (document.body.classList.contains("members-open")) return view.membersToggle;
  return undefined;
}

/** Closes the open drawer and gives the focus back to its button. */
function closeDrawerToToggle() {
  const toggle = openToggle();
  if (toggle === undefined) return;
  closeDrawers();
  toggle.focus();
}

view.scrim.addEventListener("click", closeDrawerToToggle);

// Widened past the phone layout, the panels are in the page: no drawer stays open.
matchMedia("(max-width: 50rem)").addEventListener("change", (event) => {
  if (!event.matches) closeDrawers();
});

/** An open drawer holds the focus: Tab and Shift+Tab go round its controls only. */
function holdFocus(event) {
  const toggle = openToggle();
  // Wide screens show every panel: no drawer to hold the focus in.
  if (toggle === undefined || toggle.offsetParent === null) return;
  const drawer = $(toggle.getAttribute("aria-controls"));
  const controls = [...drawer.querySelectorAll("button, input, a[href]")]
    .filter((control) => !control.disabled && control.offsetParent !== null);
  if (controls.length === 0) return;
  const first = controls[0];
  const last = controls[controls.length - 1];
  const inside = drawer.contains(document.activeElement);
  if (!inside || (event.shiftKey && document.activeElement === first)) {
    event.preventDefault();
    (event.shiftKey ? last : first).focus();
  } else if (!event.shiftKey && document.activeElement === last) {
    event.preventDefault();
    first.focus();
  }
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Tab") holdFocus(event);
  else if (event.key === "Escape") closeDrawerToToggle();
});

setInterval(() => {
  if (state.ready) requestRooms();
}, ROOMS_REFRESH_MS);

// ---- start: the session of this tab, unless the address asks for another name ----

/** The token of an #auth= fragment, taken off the address so that it is not bookmarked or shared. */
function takeAuthFromAddress() {
  const auth = new URLSearchParams(location.hash.slice(1)).get("auth") ?? undefined;
  if (auth !== undefined) history.replaceState(null, "", location.pathname + location.search);
  return auth;
}

addEventListener("hashchange", () => {
  const auth = takeAuthFromAddress();
  if (auth === undefined) return;
  const previous = state.auth;
  state.auth = auth;
  saveSession();
  if (send({ type: "refresh", auth })) {
    state.refreshing = { previous };
    state.sentAuth = auth;
    return;
  }
  // Not signed in on this socket yet: the next connect (or a 4001's retry) takes the new token.
  if (!state.signedOut) return;
  state.signedOut = false;
  setStatus("Signing in…");
  connect(state.name === undefined ? { type: "hello", auth } : resumeRequest());
});

const requested = new URLSearchParams(location.search).get("name") ?? undefined;
const saved = loadJson(SESSION_KEY);
for (const [peer, events] of loadJson(CONVERSATIONS_KEY) ?? []) {
  state.conversations.set(peer, events);
}
renderConversations();
const sameName = requested === undefined ||
  requested.toLowerCase() === String(saved?.name).toLowerCase();
state.auth = takeAuthFromAddress() ?? saved?.auth;
if (saved?.name !== undefined && sameName) {
  state.name = saved.name;
  state.token = saved.token;
  state.room = saved.room ?? "lobby";
  if (typeof saved.peer === "string" && state.conversations.has(saved.peer)) {
    state.restorePeer = saved.peer;
  }
  // The whole backlog of the room comes back: the page starts empty.
  state.seen = new Map(Object.entries(saved.seen ?? {}));
  state.privates = saved.privates;
  state.seen.delete(state.room);
  connect(resumeRequest());
} else {
  connect({ type: "hello", name: requested, auth: state.auth });
}
