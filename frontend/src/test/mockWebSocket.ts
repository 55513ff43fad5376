import type { LiveMessage } from "../lib/liveCheck";

/** A stand-in for the browser's WebSocket class: tests open, push messages and close it. */
export class MockWebSocket {
  static instances: MockWebSocket[] = [];
  static reset() {
    MockWebSocket.instances = [];
  }
  static last(): MockWebSocket {
    return MockWebSocket.instances[MockWebSocket.instances.length - 1];
  }

  url: string;
  sent: string[] = [];
  closed = false;
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;

  constructor(url: string) {
    this.url = url;
    MockWebSocket.instances.push(this);
  }

  send(data: string) {
    this.sent.push(data);
  }

  close() {
    this.closed = true;
  }

  // -- driven by the test
  open() {
    this.onopen?.(new Event("open"));
  }

  receive(message: LiveMessage) {
    this.receiveRaw(JSON.stringify(message));
  }

  receiveRaw(data: string) {
    this.onmessage?.(new MessageEvent("message", { data }));
  }

  drop(code = 1006) {
    this.closed = true;
    this.onclose?.({ code } as CloseEvent);
  }
}
