// A WHATWG WebSocket client (Node's, which applies RFC 6455's UTF-8 rule
// to text frames as browsers do): connects to argv[2] and prints one JSON
// line per event: {"open":true}, {"msg":"<text>"}, {"close":<code>}.
// It exits when the socket closes or stdin ends.
const ws = new WebSocket(process.argv[2]);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
ws.onopen = () => out({ open: true });
ws.onmessage = (e) => out({ msg: String(e.data) });
ws.onerror = () => {};
ws.onclose = (e) => { out({ close: e.code }); process.exit(0); };
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
