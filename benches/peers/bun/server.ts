// Reference peer for wsbench: the chat protocol of SPEC §3 served the way BunKit serves it.
//
// Bun.serve's websocket with its native pub/sub (ws.subscribe / ws.publish; publish skips the
// sender), Zod 4 schemas with the same limits as wskit-chat, an HS256 JWT check on upgrade, and
// error replies shaped like SPEC §4. It exists so `wsbench` can measure wskit against the runtime
// the issue compares with, under the same load, on the same machine.
//
// Run: node_modules/@oven/bun-linux-x64/bin/bun server.ts --port 3001
// Secret: --jwt-secret S, or env WSKIT_JWT_SECRET, default the wskit dev secret.

import { createHmac, timingSafeEqual } from "node:crypto";
import type { ServerWebSocket } from "bun";
import { z } from "zod";

const DEV_SECRET = "wskit-dev-secret-do-not-use-in-production";
/// Chat messages are capped at 64 KiB, as in wskit-chat (SPEC §4: close 1009 above it).
const CHAT_MAX_PAYLOAD = 64 * 1024;

function arg(name: string): string | undefined {
  const i = Bun.argv.indexOf(`--${name}`);
  return i >= 0 ? Bun.argv[i + 1] : undefined;
}

const port = Number(arg("port") ?? process.env.PORT ?? 3001);
const hostname = arg("host") ?? "127.0.0.1";
const secret = arg("jwt-secret") ?? process.env.WSKIT_JWT_SECRET ?? DEV_SECRET;

// ---- JWT (HS256): signature, alg and exp, as wskit-chat checks them ----

type User = { id: string; email: string };

function verifyJwt(token: string): User | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  const [h, p, s] = parts;
  try {
    const header = JSON.parse(Buffer.from(h, "base64url").toString());
    if (header.alg !== "HS256") return null;
    const expected = createHmac("sha256", secret).update(`${h}.${p}`).digest();
    const given = Buffer.from(s, "base64url");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    const claims = JSON.parse(Buffer.from(p, "base64url").toString());
    if (typeof claims.sub !== "string" || typeof claims.exp !== "number") return null;
    if (claims.exp <= Date.now() / 1000) return null;
    return { id: claims.sub, email: String(claims.email ?? "") };
  } catch {
    return null;
  }
}

/// Query `?token=`, `Authorization: Bearer`, or the `base64url.bearer.<token>` subprotocol (SPEC §6).
function extractToken(req: Request, url: URL): { token: string | null; protocol?: string } {
  const q = url.searchParams.get("token");
  if (q) return { token: q };
  const auth = req.headers.get("authorization");
  if (auth?.startsWith("Bearer ")) return { token: auth.slice(7) };
  const offered = req.headers.get("sec-websocket-protocol");
  if (offered) {
    for (const p of offered.split(",").map((s) => s.trim())) {
      if (p.startsWith("base64url.bearer.")) {
        const token = Buffer.from(p.slice("base64url.bearer.".length), "base64url").toString();
        return { token, protocol: "wskit" };
      }
    }
  }
  return { token: null };
}

// ---- Schemas: the four client messages with SPEC §3's limits ----

const roomId = z.string().min(1).max(50);
const chatSchemas: Record<string, z.ZodType> = {
  join_room: z.object({ type: z.literal("join_room"), roomId }),
  leave_room: z.object({ type: z.literal("leave_room"), roomId }),
  chat_message: z.object({
    type: z.literal("chat_message"),
    roomId,
    message: z.string().min(1).max(1000),
  }),
  typing: z.object({ type: z.literal("typing"), roomId: z.string(), isTyping: z.boolean() }),
};
const echoSchemas: Record<string, z.ZodType> = {
  echo: z.object({ type: z.literal("echo"), message: z.string() }),
};

type Data = { route: "chat" | "echo"; user: User | null; rooms: Set<string> };
type WS = ServerWebSocket<Data>;

function sendError(ws: WS, code: string, message: string, issues?: z.core.$ZodIssue[]) {
  const body: Record<string, unknown> = { type: "error", message, code };
  if (issues) {
    body.issues = issues.map((i) => ({ path: i.path, code: i.code, message: i.message }));
  }
  ws.send(JSON.stringify(body));
}

/// Parses the envelope, picks the schema by `type`, validates: SPEC §4's three error replies.
function parse(ws: WS, text: string, schemas: Record<string, z.ZodType>): any | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    sendError(ws, "invalid_json", "message is not valid JSON");
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    sendError(ws, "invalid_json", "message is not a JSON object");
    return null;
  }
  const type = (value as { type?: unknown }).type;
  const schema = typeof type === "string" ? schemas[type] : undefined;
  if (!schema) {
    sendError(ws, "unknown_type", `unknown message type: ${String(type)}`);
    return null;
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    sendError(ws, "validation_failed", "message failed validation", result.error.issues);
    return null;
  }
  return result.data;
}

const room = (id: string) => `room:${id}`;

const server = Bun.serve<Data, {}>({
  port,
  hostname,
  fetch(req, server) {
    const url = new URL(req.url);
    const route = url.pathname === "/ws/chat" ? "chat" : url.pathname === "/ws/echo" ? "echo" : null;
    if (!route) return new Response("not found", { status: 404 });
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("upgrade required", { status: 426 });
    }
    let user: User | null = null;
    let headers: Record<string, string> | undefined;
    if (route === "chat") {
      const { token, protocol } = extractToken(req, url);
      user = token ? verifyJwt(token) : null;
      if (!user) return new Response("unauthorized", { status: 401 });
      if (protocol) headers = { "Sec-WebSocket-Protocol": protocol };
    }
    if (server.upgrade(req, { data: { route, user, rooms: new Set() }, headers })) return;
    return new Response("upgrade failed", { status: 400 });
  },
  websocket: {
    maxPayloadLength: CHAT_MAX_PAYLOAD,
    message(ws, raw) {
      if (typeof raw !== "string") {
        ws.close(1003, "binary messages are not accepted");
        return;
      }
      if (ws.data.route === "echo") {
        const m = parse(ws, raw, echoSchemas);
        if (m) ws.send(JSON.stringify({ type: "message", content: m.message, timestamp: Date.now() }));
        return;
      }
      const m = parse(ws, raw, chatSchemas);
      if (!m) return;
      const user = ws.data.user!;
      switch (m.type) {
        case "join_room":
          ws.subscribe(room(m.roomId));
          ws.data.rooms.add(m.roomId);
          ws.publish(
            room(m.roomId),
            JSON.stringify({
              type: "room_joined",
              roomId: m.roomId,
              userId: user.id,
              userEmail: user.email,
              timestamp: Date.now(),
            }),
          );
          break;
        case "leave_room":
          ws.data.rooms.delete(m.roomId);
          ws.unsubscribe(room(m.roomId));
          ws.publish(
            room(m.roomId),
            JSON.stringify({ type: "room_left", roomId: m.roomId, userId: user.id, timestamp: Date.now() }),
          );
          break;
        case "chat_message":
          ws.publish(
            room(m.roomId),
            JSON.stringify({
              type: "message",
              roomId: m.roomId,
              userId: user.id,
              userEmail: user.email,
              message: m.message,
              timestamp: Date.now(),
            }),
          );
          break;
        case "typing":
          ws.publish(
            room(m.roomId),
            JSON.stringify({ type: "typing", roomId: m.roomId, userId: user.id, isTyping: m.isTyping }),
          );
          break;
      }
    },
    close(ws) {
      const user = ws.data.user;
      if (!user) return;
      // The socket is gone, so ws.publish cannot be used; server.publish reaches the rest.
      for (const id of ws.data.rooms) {
        server.publish(
          room(id),
          JSON.stringify({ type: "room_left", roomId: id, userId: user.id, timestamp: Date.now() }),
        );
      }
    },
  },
});

console.log(`bun peer on ws://${server.hostname}:${server.port} (pid ${process.pid})`);
