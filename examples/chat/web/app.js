// @ts-check
// The chat page, written against the generated protocol types (`websocket-types.ts`, from
// `wskit-chat export`) and checked by `tsc --strict --checkJs`.

/** @typedef {import("./websocket-types").ChatServerMessage} ServerMessage */
/** @typedef {import("./websocket-types").ChatClientMessage} ClientMessage */

/** @param {string} id */
function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing`);
  return el;
}

const nameInput = /** @type {HTMLInputElement} */ ($("name"));
const connectButton = /** @type {HTMLButtonElement} */ ($("connect"));
const roomInput = /** @type {HTMLInputElement} */ ($("room"));
const joinButton = /** @type {HTMLButtonElement} */ ($("join"));
const leaveButton = /** @type {HTMLButtonElement} */ ($("leave"));
const messageInput = /** @type {HTMLInputElement} */ ($("message"));
const sendButton = /** @type {HTMLButtonElement} */ ($("send"));
const messages = $("messages");
const typingLine = $("typing");
const statusLine = $("status");

/** @type {WebSocket | null} */
let socket = null;
let userName = "";
let wantOpen = false;
let backoffMs = 500;
/** Rooms this page has joined, re-joined after a reconnect. @type {Set<string>} */
const joined = new Set();
/** Who is typing, per room. @type {Map<string, Set<string>>} */
const typing = new Map();
/** @type {ReturnType<typeof setTimeout> | undefined} */
let typingTimer;
let amTyping = false;

/** @param {string} state @param {string} [text] */
function setStatus(state, text) {
  statusLine.textContent = text ?? state;
  statusLine.className = state;
  const open = state === "connected";
  joinButton.disabled = leaveButton.disabled = sendButton.disabled = !open;
}

/** @param {string} text @param {string} [kind] @param {string} [who] @param {string} [room] */
function show(text, kind = "chat", who, room) {
  const li = document.createElement("li");
  li.className = kind;
  if (room) {
    const r = document.createElement("span");
    r.className = "room";
    r.textContent = `#${room}`;
    li.append(r);
  }
  if (who) {
    const w = document.createElement("span");
    w.className = "who";
    w.textContent = who;
    li.append(w);
  }
  li.append(document.createTextNode(text));
  messages.append(li);
  messages.scrollTop = messages.scrollHeight;
}

/** @param {ClientMessage} message */
function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

/** base64url without padding, for the token subprotocol (SPEC §6). @param {string} text */
function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function renderTyping() {
  const names = [];
  for (const [room, who] of typing) for (const name of who) names.push(`${name} (#${room})`);
  typingLine.textContent = names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "";
}

/** @param {ServerMessage} message */
function handle(message) {
  switch (message.type) {
    case "room_joined":
      show(`${message.userId} joined`, "system", undefined, message.roomId);
      break;
    case "room_left":
      show(`${message.userId} left`, "system", undefined, message.roomId);
      typing.get(message.roomId)?.delete(message.userId);
      renderTyping();
      break;
    case "message":
      show(message.message, "chat", message.userId, message.roomId);
      typing.get(message.roomId)?.delete(message.userId);
      renderTyping();
      break;
    case "typing": {
      const who = typing.get(message.roomId) ?? new Set();
      if (message.isTyping) who.add(message.userId);
      else who.delete(message.userId);
      typing.set(message.roomId, who);
      renderTyping();
      break;
    }
    case "error": {
      const details = (message.issues ?? []).map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
      show(`error (${message.code}): ${message.message}${details ? ` — ${details}` : ""}`, "error");
      break;
    }
  }
}

async function open() {
  const response = await fetch(`/token?user=${encodeURIComponent(userName)}`);
  if (!response.ok) throw new Error(`token request failed: ${response.status}`);
  const { token } = /** @type {{token: string}} */ (await response.json());
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/chat`;
  const ws = new WebSocket(url, ["wskit", `base64url.bearer.${base64url(token)}`]);
  socket = ws;
  ws.onopen = () => {
    backoffMs = 500;
    setStatus("connected", `connected as ${userName}`);
    for (const roomId of joined) send({ type: "join_room", roomId });
  };
  ws.onmessage = (event) => handle(/** @type {ServerMessage} */ (JSON.parse(String(event.data))));
  ws.onclose = (event) => {
    if (socket !== ws) return;
    socket = null;
    typing.clear();
    renderTyping();
    if (!wantOpen) return setStatus("disconnected");
    const delay = backoffMs;
    backoffMs = Math.min(backoffMs * 2, 8000);
    setStatus("reconnecting", `reconnecting in ${Math.round(delay / 100) / 10}s (closed ${event.code})`);
    setTimeout(() => connect().catch(() => {}), delay);
  };
}

async function connect() {
  try {
    await open();
  } catch {
    const delay = backoffMs;
    backoffMs = Math.min(backoffMs * 2, 8000);
    setStatus("reconnecting", `server unreachable, retrying in ${Math.round(delay / 100) / 10}s`);
    setTimeout(() => connect().catch(() => {}), delay);
  }
}

connectButton.onclick = () => {
  userName = nameInput.value.trim();
  if (!userName) return nameInput.focus();
  wantOpen = true;
  connectButton.disabled = true;
  nameInput.disabled = true;
  setStatus("reconnecting", "connecting…");
  connect();
};

joinButton.onclick = () => {
  const roomId = roomInput.value.trim();
  if (!roomId) return;
  joined.add(roomId);
  send({ type: "join_room", roomId });
  show(`you joined`, "system", undefined, roomId);
};

leaveButton.onclick = () => {
  const roomId = roomInput.value.trim();
  joined.delete(roomId);
  typing.delete(roomId);
  renderTyping();
  send({ type: "leave_room", roomId });
  show(`you left`, "system", undefined, roomId);
};

function stopTyping() {
  clearTimeout(typingTimer);
  if (amTyping) {
    amTyping = false;
    send({ type: "typing", roomId: roomInput.value.trim(), isTyping: false });
  }
}

messageInput.oninput = () => {
  if (!amTyping && messageInput.value) {
    amTyping = true;
    send({ type: "typing", roomId: roomInput.value.trim(), isTyping: true });
  }
  clearTimeout(typingTimer);
  typingTimer = setTimeout(stopTyping, 1500);
};

function sendMessage() {
  const message = messageInput.value;
  if (!message) return;
  const roomId = roomInput.value.trim();
  stopTyping();
  send({ type: "chat_message", roomId, message });
  show(message, "chat mine", userName, roomId);
  messageInput.value = "";
}

sendButton.onclick = sendMessage;
messageInput.onkeydown = (/** @type {KeyboardEvent} */ e) => {
  if (e.key === "Enter") sendMessage();
};
