// The browser client: speaks protocol v2 (subprotocol "chat.v2"), resumes
// its session after a dropped connection, and keeps unread counts per room.
// Plain modules, no build step. See docs/protocol.md for the messages.

const PROTOCOL = "chat.v2";
const SESSION_KEY = "chat.session";
const ROOMS_REFRESH_MS = 5000;
const MAX_BACKOFF_MS = 30000;
const MAX_SHOWN_MESSAGES = 500;

const $ = (id) => document.getElementById(id);
const view = {
  status: $("status"),
  me: $("me"),
  currentRoom: $("current-room"),
  rooms: $("rooms"),
  members: $("members"),
  messages: $("messages"),
  input: $("input"),
  hints: $("hints"),
  sendForm: $("send-form"),
  joinForm: $("join-form"),
  newRoom: $("new-room"),
};

/** What survives a reconnect: who we are and what we have seen. */
const state = {
  name: undefined,
  token: undefined,
  room: "lobby",
  /** Last seq seen per room, for resuming and for unread counts. */
  seen: new Map(),
  /** The epoch of each room's log: seqs from another epoch say nothing. */
  epochs: new Map(),
  rooms: [],
  members: [],
  /** The server's commands, from its `help` answer, for the hints. */
  commands: [],
  /** Whether the next `help` event answers our own request for the hints (not shown). */
  helpForHints: false,
  socket: undefined,
  attempt: 0,
};

function saveSession() {
  sessionStorage.setItem(
    SESSION_KEY,
    JSON.stringify({ name: state.name, token: state.token, room: state.room }),
  );
}

function loadSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null");
  } catch {
    return null;
  }
}

function setStatus(text) {
  view.status.textContent = text;
}

function send(request) {
  if (state.socket?.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify(request));
    return true;
  }
  setStatus("Not connected: your message was not sent.");
  return false;
}

function connect(resume) {
  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url, PROTOCOL);
  state.socket = socket;
  socket.addEventListener("open", () => {
    state.attempt = 0;
    setStatus("Connected");
    if (resume !== undefined) send({ type: "resume", ...resume });
    else {send({
        type: "hello",
        name: new URLSearchParams(location.search).get("name") ?? undefined,
      });}
  });
  socket.addEventListener("message", (event) => {
    const data = JSON.parse(event.data);
    for (const item of Array.isArray(data) ? data : [data]) handle(item);
  });
  socket.addEventListener("close", (event) => {
    if (state.socket !== socket) return;
    state.socket = undefined;
    if (event.code === 4000) {
      setStatus("This session continues in another window.");
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
    connect(resumeRequest(state.seen.get(state.room) ?? 0));
  }, delay);
}

function resumeRequest(seq) {
  if (state.name === undefined) return undefined;
  const room = { name: state.room, epoch: state.epochs.get(state.room), seq };
  return { name: state.name, token: state.token, room };
}

function handle(event) {
  switch (event.type) {
    case "welcome":
      state.name = event.name;
      state.token = event.token;
      noteEpoch(event.room, event.epoch);
      enterRoom(event.room);
      show(event, "system", event.text);
      send({ type: "members" });
      send({ type: "rooms" });
      if (state.commands.length === 0) {
        state.helpForHints = send({ type: "help" });
      }
      break;
    case "history":
      noteEpoch(event.room, event.epoch);
      noteSeen(event.room, event.seq);
      show(event, classesOf(event), event.text, event.from);
      break;
    case "gap":
      noteEpoch(event.room, event.epoch);
      state.seen.delete(event.room);
      show(event, "gap", event.text);
      break;
    case "message":
      noteSeen(event.room, event.seq);
      show(event, classesOf(event), event.text, event.from);
      break;
    case "private":
      show(
        event,
        "private",
        event.text,
        event.from === state.name ? `to ${event.to}` : `from ${event.from}`,
      );
      break;
    case "presence":
      updateMembers(event);
      show(event, "presence", event.text);
      break;
    case "members":
      noteEpoch(event.room, event.epoch);
      if (event.room !== state.room) {
        enterRoom(event.room);
        send({ type: "rooms" });
      }
      state.members = [...event.members];
      renderMembers();
      break;
    case "rooms":
      state.rooms = event.rooms;
      renderRooms();
      break;
    case "system":
      show(event, "system", event.text);
      break;
    case "help":
      if (state.helpForHints) {
        state.helpForHints = false;
        state.commands = event.commands;
        showHints();
      } else {
        show(event, "system", event.text);
      }
      break;
    case "error":
      show(event, "error", event.text);
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
  if (state.room !== room) view.messages.replaceChildren();
  state.room = room;
  view.me.textContent = state.name;
  view.currentRoom.textContent = room;
  document.title = `${room} · Chat`;
  saveSession();
  renderRooms();
}

/** Seqs are counted within an epoch: a new one starts the count again. */
function noteEpoch(room, epoch) {
  if (epoch === undefined || state.epochs.get(room) === epoch) return;
  state.epochs.set(room, epoch);
  state.seen.delete(room);
}

function noteSeen(room, seq) {
  if (seq > (state.seen.get(room) ?? 0)) state.seen.set(room, seq);
}

function updateMembers(event) {
  if (event.room !== state.room) return;
  if (event.action === "join") state.members.push(event.from);
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
}

function show(event, classes, text, from) {
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
  const atBottom =
    view.messages.scrollTop + view.messages.clientHeight >= view.messages.scrollHeight - 8;
  view.messages.append(item);
  while (view.messages.childElementCount > MAX_SHOWN_MESSAGES) {
    view.messages.firstElementChild.remove();
  }
  if (atBottom) item.scrollIntoView({ block: "end" });
}

function renderRooms() {
  const items = state.rooms.map((room) => {
    // A room first seen now has nothing unread; after that, what is newer than what we saw.
    if (!state.seen.has(room.name)) state.seen.set(room.name, room.lastSeq);
    const current = room.name === state.room;
    const unread = current ? 0 : room.lastSeq - state.seen.get(room.name);
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("aria-current", String(current));
    button.textContent = `#${room.name} (${room.members})`;
    if (unread > 0) {
      const badge = document.createElement("span");
      badge.className = "unread";
      badge.textContent = String(unread);
      badge.setAttribute("aria-label", `${unread} unread`);
      button.append(" ", badge);
    }
    button.addEventListener("click", () => {
      if (!current) send({ type: "join", room: room.name });
    });
    const item = document.createElement("li");
    item.append(button);
    return item;
  });
  view.rooms.replaceChildren(...items);
}

function renderMembers() {
  const items = state.members.map((name) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = name === state.name ? `${name} (you)` : name;
    button.title = `Send ${name} a private message`;
    button.addEventListener("click", () => {
      view.input.value = `!pm ${name} `;
      view.input.focus();
      showHints();
    });
    const item = document.createElement("li");
    item.append(button);
    return item;
  });
  view.members.replaceChildren(...items);
}

function showHints() {
  const text = view.input.value;
  if (!text.startsWith("!")) {
    view.hints.textContent = "";
    return;
  }
  const typed = text.split(/\s/, 1)[0].slice(1).toLowerCase();
  const matches = state.commands.filter(({ name }) =>
    name.startsWith(typed) || typed.startsWith(name)
  );
  view.hints.textContent = matches.map(({ usage, summary }) => `${usage}: ${summary}`).join(" · ");
}

view.input.addEventListener("input", showHints);

view.sendForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = view.input.value;
  if (text.trim() === "") return;
  const sent = send(text.startsWith("!") ? { type: "command", text } : { type: "say", text });
  if (sent) {
    view.input.value = "";
    showHints();
  }
});

view.joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const room = view.newRoom.value.trim();
  if (room !== "" && send({ type: "join", room })) view.newRoom.value = "";
});

setInterval(() => {
  if (state.socket?.readyState === WebSocket.OPEN) send({ type: "rooms" });
}, ROOMS_REFRESH_MS);

// A reload picks the session up again, with the whole backlog of its room.
const saved = loadSession();
if (saved?.name !== undefined) {
  state.name = saved.name;
  state.token = saved.token;
  state.room = saved.room ?? "lobby";
  connect(resumeRequest(0));
} else {
  connect(undefined);
}
