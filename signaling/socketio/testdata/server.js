// The Socket.IO 4 server of the signaling/socketio tests and of
// docs/SOCKETIO.md. It serves two things on one port:
//
// - Namespace /dialtone: a forwarder of dialtone envelopes (mode 1). A
//   client signs in with handshake auth {user}, as a development server
//   trusts it (a real one checks a token there), and gets `ready`; every
//   routed envelope it emits as event `dialtone` is stamped with `from`
//   and forwarded to the sockets of user `to`. An invite for a user with
//   no socket is answered `offline`.
// - Namespace /: a room-relay app of the common shape (mode 2): `join`
//   (room name) puts the socket in the room, tells it `joined` when the
//   room already had a member and tells the others `joined`; `offer` and
//   `answer` ({room, sdp}) and `candidate` ({room, candidate}) go to the
//   others in the room as their bare payload; `leave` (room) and a
//   disconnect tell the others `leave`. It serves the app's page,
//   index.html, at / and the Socket.IO client at /socket.io/socket.io.js.
//
// It listens on 127.0.0.1 at the port given as its first argument (0: any
// free one) and prints {"port": N} on its first line of output.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { Server } = require('socket.io');

const page = fs.readFileSync(path.join(__dirname, 'index.html'));
const httpServer = http.createServer((req, res) => {
  if (req.url === '/' || req.url.startsWith('/?')) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page);
    return;
  }
  res.writeHead(404);
  res.end();
});
const io = new Server(httpServer);

// Mode 1: dialtone envelopes.
const dialtone = io.of('/dialtone');
const validUser = (u) => typeof u === 'string' && /^[^\s:]{1,256}$/.test(u);
dialtone.use((socket, next) => {
  const user = socket.handshake.auth && socket.handshake.auth.user;
  if (!validUser(user)) return next(new Error('auth.user is not a valid user name'));
  socket.data.user = user;
  next();
});
dialtone.on('connection', (socket) => {
  const user = socket.data.user;
  socket.join('user:' + user);
  socket.emit('dialtone', { type: 'ready', to: user, data: { user, protocol: 1 } });
  socket.on('dialtone', (m) => {
    if (m === null || typeof m !== 'object' || typeof m.type !== 'string') {
      socket.emit('dialtone', { type: 'error', to: user, data: { code: 'malformed', message: 'not an envelope' } });
      return;
    }
    if (!validUser(m.to) || typeof m.call !== 'string' || m.call === '') {
      socket.emit('dialtone', { type: 'error', to: user, call: m.call, data: { code: 'missing-to', rejected: m.type } });
      return;
    }
    const out = { type: m.type, from: user, to: m.to, call: m.call };
    if (m.data !== undefined) out.data = m.data;
    const target = dialtone.to('user:' + m.to);
    if (m.type === 'invite' && (dialtone.adapter.rooms.get('user:' + m.to) || new Set()).size === 0) {
      socket.emit('dialtone', { type: 'offline', from: m.to, to: user, call: m.call });
      return;
    }
    if (m.type === 'invite') socket.emit('dialtone', { type: 'waiting', from: m.to, to: user, call: m.call });
    target.emit('dialtone', out);
  });
});

// Mode 2: the room-relay app.
io.on('connection', (socket) => {
  socket.on('join', (room) => {
    if (typeof room !== 'string' || room === '') return;
    const members = io.sockets.adapter.rooms.get(room);
    if (members && members.size >= 2) {
      socket.emit('full', room);
      return;
    }
    socket.join(room);
    socket.data.room = room;
    if (members && members.size > 0) socket.emit('joined', { room, id: socket.id });
    socket.to(room).emit('joined', { room, id: socket.id });
  });
  for (const [event, key] of [['offer', 'sdp'], ['answer', 'sdp'], ['candidate', 'candidate']]) {
    socket.on(event, (msg) => {
      if (msg && typeof msg.room === 'string' && msg[key] !== undefined) socket.to(msg.room).emit(event, msg[key]);
    });
  }
  socket.on('leave', (room) => {
    if (typeof room !== 'string') return;
    socket.to(room).emit('leave', socket.id);
    socket.leave(room);
    if (socket.data.room === room) socket.data.room = undefined;
  });
  socket.on('disconnect', () => {
    if (socket.data.room) socket.to(socket.data.room).emit('leave', socket.id);
  });
});

httpServer.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: httpServer.address().port }) + '\n');
});
