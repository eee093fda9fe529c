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

const $ = (id) => document.getElementById(id);
const view = {
  status: $("status"),
  me: $("me"),
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
  rooms: [],
  members: [],
  /** Private messages per person, oldest first; kept for the tab's session. */
  conversations: new Map(),
  /** Private messages not read yet, per person. */
  privateUnread: new Map(),
  /** Whom the conversation view shows, when it is open. */
  peer: undefined,
  /** The server's commands, from its `help` answer, for the hints. */
  commands: [],
  /** Whether the next `help` event answers our own request for the hints (not shown). */
  helpForHints: false,
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
      seen,
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
    state.attempt = 0;
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
    if (event.code === 4000) {
      setStatus("This session continues in another window.");
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
  };
}

function requestRooms() {
  send({ type: "rooms", seen: Object.fromEntries(state.seen) });
}

// ---- what the server sends ----

function handle(event) {
  switch (event.type) {
    case "welcome":
      state.ready = true;
      state.refreshing = undefined;
      state.name = event.name;
      state.token = event.token;
      noteEpoch(event.room, event.epoch);
      enterRoom(event.room);
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
    case "gap":
      noteEpoch(event.room, event.epoch);
      show(view.messages, event, "gap", event.text);
      break;
    case "message":
      noteEpoch(event.room, event.epoch);
      noteSeen(event.room, event.seq);
      show(view.messages, event, classesOf(event), event.text, event.from);
      break;
    case "private":
      receivePrivate(event);
      break;
    case "presence":
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
      show(currentList(), event, "error", event.text);
      break;
  }
}

function classesOf(event) {
  const classes = [event.type];
  if (event.from === state.name) classes.push("self");
  if (event.emote) classes.push("emote");
  return classes.join(" ");
}

function enterRoom(room) {
  const changed = state.room !== room;
  if (changed) view.messages.replaceChildren();
  state.room = room;
  view.me.textContent = state.name;
  saveSession();
  // An open conversation stays open through a reconnect; moving to a room shows the room.
  if (changed || state.peer === undefined) openRoomView();
  else renderRooms();
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
  if (!kept.some((earlier) => earlier.id === event.id)) {
    kept.push(event);
    state.conversations.set(peer, kept.slice(-MAX_KEPT_PRIVATES));
    saveConversations();
  }
  const mine = event.from === state.name;
  show(view.messages, event, "private", event.text, mine ? `to ${event.to}` : `from ${event.from}`);
  if (state.peer === peer) {
    show(view.conversation, event, classesOf(event), event.text, event.from);
  } else if (!mine) {
    state.privateUnread.set(peer, (state.privateUnread.get(peer) ?? 0) + 1);
  }
  renderConversations();
}

// ---- showing messages ----

/** The message list on screen: the room's, or the open conversation's. */
function currentList() {
  return state.peer === undefined ? view.messages : view.conversation;
}

function show(list, event, classes, text, from) {
  list.append(messageItem(event, classes, text, from));
  trim(list);
}

function messageItem(event, classes, text, from) {
  const item = document.createElement("li");
  item.className = classes;
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
  item.append(text);
  return item;
}

/** Keeps a list short, and at its newest line when it was there. */
function trim(list) {
  while (list.childElementCount > MAX_SHOWN_MESSAGES) list.firstElementChild.remove();
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - list.lastElementChild
        .offsetHeight -
      8;
  if (atBottom) list.lastElementChild.scrollIntoView({ block: "end" });
}

// ---- the views: a room, or a private conversation ----

function openRoomView() {
  state.peer = undefined;
  view.messages.hidden = false;
  view.conversation.hidden = true;
  view.currentRoom.textContent = `#${state.room}`;
  view.input.placeholder = "Say something, or type ! for commands";
  document.title = `${state.room} · Chat`;
  renderTopic();
  renderRooms();
  renderConversations();
}

function openConversation(peer) {
  state.peer = peer;
  state.privateUnread.delete(peer);
  view.messages.hidden = true;
  view.conversation.hidden = false;
  view.currentRoom.textContent = `Private with ${peer}`;
  view.topic.textContent = "";
  view.input.placeholder = `Message ${peer} privately`;
  document.title = `${peer} · Chat`;
  const items = (state.conversations.get(peer) ?? []).map((event) =>
    messageItem(event, classesOf(event), event.text, event.from)
  );
  view.conversation.replaceChildren(...items);
  view.conversation.lastElementChild?.scrollIntoView({ block: "end" });
  renderRooms();
  renderConversations();
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
});

view.input.addEventListener("keydown", (event) => {
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
  const request = requestFor(text);
  if (!send(request)) {
    if (state.queued.length >= MAX_QUEUED) {
      view.sendNote.textContent = "Offline, and too much is waiting: try again when connected.";
      return;
    }
    const line = messageItem({ sentAt: new Date().toISOString() }, "pending", text, state.name);
    currentList().append(line);
    line.scrollIntoView({ block: "end" });
    state.queued.push({ request, line });
    renderQueue();
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

view.scrim.addEventListener("click", closeDrawers);

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const open = document.body.classList.contains("rooms-open")
    ? view.roomsToggle
    : document.body.classList.contains("members-open")
    ? view.membersToggle
    : undefined;
  if (open === undefined) return;
  closeDrawers();
  open.focus();
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
  // The whole backlog of the room comes back: the page starts empty.
  state.seen = new Map(Object.entries(saved.seen ?? {}));
  state.seen.delete(state.room);
  connect(resumeRequest());
} else {
  connect({ type: "hello", name: requested, auth: state.auth });
}
