import { type ChildProcess, fork } from "node:child_process";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { fileURLToPath } from "node:url";

/**
 * Receivers that misbehave on every request, run in a process of their own:
 * a thousand of them accepting, reading and dribbling must not share the
 * event loop of the healthy receiver whose receipt times a test measures
 * (real receivers run on other machines).
 */

export type Behaviour = "hang" | "dribble" | "redirect" | "close";

export interface Misbehaving {
  urls: string[];
  stop(): Promise<void>;
}

const SELF = fileURLToPath(import.meta.url);

/** Start `n` receivers of each behaviour in a child process; resolves with their URLs, in plan order. */
export function startMisbehaving(plan: [Behaviour, number][]): Promise<Misbehaving> {
  const child: ChildProcess = fork(SELF, [JSON.stringify(plan)], { execArgv: ["--import", "tsx"], stdio: "inherit" });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`misbehaving receivers exited with ${code}`)));
    child.once("message", (m) =>
      resolve({
        urls: (m as { urls: string[] }).urls,
        stop: async () => {
          child.kill("SIGKILL");
          await exited;
        },
      }),
    );
  });
}

function misbehave(kind: Behaviour): Promise<string> {
  const server = createServer((socket: Socket) => {
    socket.on("error", () => {});
    let answered = false;
    socket.on("data", () => {
      if (answered) return;
      answered = true;
      if (kind === "redirect") {
        socket.write(`HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/elsewhere\r\ncontent-length: 0\r\n\r\n`);
      } else if (kind === "close") {
        socket.write("HTTP/1.1 200 OK\r\ncontent-le");
        socket.destroy();
      } else if (kind === "dribble") {
        // A header that never ends, one byte at a time.
        const line = "HTTP/1.1 200 OK\r\nx-slow: ";
        let i = 0;
        const timer = setInterval(() => {
          if (socket.destroyed) return clearInterval(timer);
          socket.write(i < line.length ? (line[i] as string) : "a");
          i++;
        }, 200);
        socket.on("close", () => clearInterval(timer));
      }
      // "hang": read the request and never answer.
    });
  });
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`)));
}

if (process.argv[1] === SELF && process.send) {
  const plan = JSON.parse(process.argv[2] ?? "[]") as [Behaviour, number][];
  const urls: string[] = [];
  for (const [kind, n] of plan) for (let i = 0; i < n; i++) urls.push(await misbehave(kind));
  process.send({ urls });
  // The parent's exit (or a kill) ends this process.
  process.on("disconnect", () => process.exit(0));
}
