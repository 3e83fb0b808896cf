// A browser client written against the generated chat types (the seed's "Use in Client"). The
// type-export check compiles it with `tsc --strict --noEmit` next to a freshly generated
// `websocket-types.ts`; it is never run.
import type {
  ChatClientMessage,
  ChatServerMessage,
  EchoClientMessage,
  EchoServerMessage,
  WebSocketRoutes,
} from "./websocket-types";

type Path = keyof WebSocketRoutes;
type ClientOf<P extends Path> = WebSocketRoutes[P]["clientMessages"];
type ServerOf<P extends Path> = WebSocketRoutes[P]["serverMessages"];

/** A socket whose `send` and `onMessage` are typed by the route. */
function connect<P extends Path>(path: P, token?: string) {
  const query = token === undefined ? "" : `?token=${encodeURIComponent(token)}`;
  const ws = new WebSocket(`ws://localhost:3000${path}${query}`);
  return {
    send(message: ClientOf<P>): void {
      ws.send(JSON.stringify(message));
    },
    onMessage(handler: (message: ServerOf<P>) => void): void {
      ws.onmessage = (event: MessageEvent<string>) => handler(JSON.parse(event.data));
    },
  };
}

// Type-safe sending.
const chat = connect("/ws/chat", "token");
const hello: ChatClientMessage = { type: "chat_message", roomId: "lobby", message: "Hello!" };
chat.send({ type: "join_room", roomId: "lobby" });
chat.send(hello);
chat.send({ type: "typing", roomId: "lobby", isTyping: true });
chat.send({ type: "leave_room", roomId: "lobby" });

// @ts-expect-error: `join_room` needs `roomId`.
chat.send({ type: "join_room" });
// @ts-expect-error: no such client message type on /ws/chat.
chat.send({ type: "join_rooom", roomId: "lobby" });
// @ts-expect-error: `isTyping` is a boolean.
const wrongField: ChatClientMessage = { type: "typing", roomId: "lobby", isTyping: "yes" };
// @ts-expect-error: echo messages are not chat messages.
chat.send({ type: "echo", message: "hi" });

// Type-safe receiving: narrowing on `message.type`.
function render(message: ChatServerMessage): string {
  switch (message.type) {
    case "room_joined":
      return `${message.userEmail} joined ${message.roomId} at ${message.timestamp}`;
    case "room_left":
      return `${message.userId} left ${message.roomId}`;
    case "message":
      return `${message.userEmail}: ${message.message}`;
    case "typing":
      return message.isTyping ? `${message.userId} is typing` : "";
    case "error": {
      const where = (message.issues ?? []).map((i) => i.path.join(".") + ": " + i.message);
      return `error ${message.code}: ${message.message} ${where.join(", ")}`;
    }
    default: {
      // Every server message type is handled above.
      const unreachable: never = message;
      return unreachable;
    }
  }
}
chat.onMessage((message) => console.log(render(message)));

const echo = connect("/ws/echo");
const ping: EchoClientMessage = { type: "echo", message: "ping" };
echo.send(ping);
echo.onMessage((message: EchoServerMessage) => {
  const content: string = message.content;
  const at: number = message.timestamp;
  console.log(content, at);
});

export { wrongField };
