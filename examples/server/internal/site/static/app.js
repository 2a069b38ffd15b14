// dialtone web phone: plain JavaScript, no build step, nothing loaded from
// elsewhere. It speaks dialtone's signaling protocol (signaling/PROTOCOL.md)
// over a WebSocket to the server that served it, and WebRTC with the same
// rules as the Go call package: the caller is impolite and the callee polite
// (W3C perfect negotiation), trickle ICE, a pre-negotiated data channel
// "text" (id 0), one call at a time (a second invite is answered `busy`).
// It joins rooms (protocol version 2) like call.Room: one peer connection
// per other member, negotiated the same way, the later joiner offering; in
// a room, invites are answered `busy`.
'use strict';

(() => {
  const RING_TIMEOUT_MS = 40000; // caller: no answer → cancel {reason: no-answer}
  const RING_GUARD_MS = 50000; // callee: stop ringing if the cancel never comes
  const CONNECT_TIMEOUT_MS = 15000; // accept → media connected
  const PAIR_RETRY_FIRST_MS = 1000; // a failed room link's first new attempt
  const PAIR_RETRY_MAX_MS = 30000; // and the longest pause between attempts
  const MAX_ICE_RESTARTS = 2;
  const FIRST_OFFER_WAIT_MS = 2000; // callee: wait this long for the caller's offer
  const STATS_INTERVAL_MS = 1000;
  const METER_INTERVAL_MS = 100;
  const METER_FLOOR_DB = -60; // meters show "silent" below this (dBFS)
  const GRAPH_SAMPLES = 120; // the quality graph's last two minutes (one sample a second)
  const OPUS_DELAY_MS = 26.5; // a 20 ms frame plus the encoder's 6.5 ms look-ahead
  const MAX_HELD_CANDIDATES = 64; // remote candidates waiting for their description
  const MAX_HELD_EVENTS = 256; // room events before the member list (signaling.Roster)
  const MAX_EARLY_SIGNALS = 64; // room-signals per user before its member-joined, and users
  const TALK_DB = -50; // a member whose audio is above this (dBFS) is talking…
  const TALK_HOLD_MS = 400; // …until it has been below it this long
  const ROOM_NAME = /^[A-Za-z0-9._-]{1,64}$/; // signaling.ValidRoom
  const ROOM_TYPES = new Set(['members', 'member-joined', 'member-left', 'member-updated', 'room-signal']);
  const ROOM_REQUESTS = new Set(['join', 'leave', 'mute', 'room-signal']);

  const $ = (id) => document.getElementById(id);

  // Everything the page knows, also exposed (read-only use) as
  // window.dialtone for debugging and for end-to-end tests.
  const phone = {
    user: '',
    token: '',
    ws: null,
    wsUp: false,
    stopped: true,
    reconnects: 0,
    reconnectTimer: 0,
    iceServers: [],
    protocol: 1, // the server's protocol version (ready); rooms need 2
    relayTTL: 0, // validity of iceServers' TURN credentials, seconds (0: none)
    relayAt: 0, // when iceServers arrived (Date.now())
    call: null, // the live call, or null
    lastCall: null, // summary of the last ended call
    notice: null, // {text, bad}: what the state line says when no call or room is live
    needsToken: null, // whether the server needs a token to log in (null: not known yet)
    room: null, // the room we are in, or null
    lastRoom: null, // summary of the last room left
    texts: [], // received data-channel texts
    events: [], // page log, newest last
    audioCtx: null,
    meters: { mic: null, remote: null, 'room-mic': null, room: null },
  };

  // ---------------------------------------------------------------- logging

  // log adds a line to the collapsed "Details" log (signaling, ICE, errors).
  function log(msg, cls) {
    const t = new Date().toISOString().slice(11, 23);
    phone.events.push(t + ' ' + msg);
    if (phone.events.length > 500) phone.events.shift();
    const li = document.createElement('li');
    li.textContent = t + ' ' + msg;
    if (cls) li.className = cls;
    const list = $('log');
    list.appendChild(li);
    while (list.children.length > 200) list.removeChild(list.firstChild);
    list.scrollTop = list.scrollHeight;
  }

  // chat adds a text message, received or sent, to the chat area.
  function chat(from, text, mine) {
    const li = document.createElement('li');
    const who = document.createElement('span');
    who.className = 'from' + (mine ? ' me' : '');
    who.textContent = (mine ? 'You' : from) + ': ';
    li.append(who, document.createTextNode(text));
    const list = $('chat-log');
    list.appendChild(li);
    while (list.children.length > 200) list.removeChild(list.firstChild);
    $('chat').hidden = false;
    list.scrollTop = list.scrollHeight;
  }

  // clearChat empties the chat area for a new call or room.
  function clearChat() {
    $('chat-log').replaceChildren();
  }

  // notify sets what the state line says once no call or room is live.
  function notify(text, bad) {
    phone.notice = text ? { text, bad: !!bad } : null;
    render();
  }

  function newCallID() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  // ------------------------------------------------------------- signaling

  async function login(user, token) {
    if (!token) {
      const r = await fetch('/token?user=' + encodeURIComponent(user), { cache: 'no-store' });
      if (r.status === 404) {
        // Not a development server: the user needs a token from elsewhere.
        showTokenField();
        throw new Error('This server needs a token: paste the one you were given.');
      }
      const body = await r.json();
      if (!r.ok) throw new Error(body.error || 'token request failed (' + r.status + ')');
      token = body.token;
    }
    phone.user = user;
    phone.token = token;
    phone.stopped = false;
    $('me').textContent = user;
    $('login').hidden = true;
    $('phone').hidden = false;
    phone.notice = null;
    connect();
  }

  // A development server hands out tokens at /token and answers a request
  // without a user name 400; any other server has no /token (404), and
  // its users log in with a token they were given.
  async function probeTokenEndpoint() {
    try {
      const r = await fetch('/token', { cache: 'no-store' });
      phone.needsToken = r.status === 404;
      if (phone.needsToken) showTokenField();
    } catch (err) {
      log('server not reachable: ' + err.message, 'error');
    }
  }

  function showTokenField() {
    $('token-row').hidden = false;
    $('login-token').required = true;
  }

  async function freshToken() {
    const r = await fetch('/token?user=' + encodeURIComponent(phone.user), { cache: 'no-store' });
    if (!r.ok) throw new Error('no token (' + r.status + ')');
    phone.token = (await r.json()).token;
  }

  function logout() {
    phone.stopped = true;
    if (phone.call) endCall('hangup', true);
    if (phone.room) endRoom('left', true);
    clearTimeout(phone.reconnectTimer);
    if (phone.ws) phone.ws.close(1000, 'logout');
    phone.ws = null;
    $('phone').hidden = true;
    $('login').hidden = false;
  }

  function connect() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(proto + '//' + location.host + '/ws?token=' + encodeURIComponent(phone.token));
    phone.ws = ws;
    setConn('connecting');
    ws.onmessage = (e) => {
      let m;
      try {
        m = JSON.parse(e.data);
      } catch (err) {
        log('bad message from server ignored');
        return;
      }
      onMessage(m);
    };
    ws.onclose = (e) => {
      if (phone.ws !== ws) return;
      phone.ws = null;
      phone.wsUp = false;
      setConn('down');
      // A call still being set up needs signaling; a connected one does not.
      if (phone.call && phone.call.state !== 'connected') endCall('signaling-lost', false);
      // A room keeps its peer connections and is joined again on `ready`
      // (within the server's grace it is the same membership).
      if (phone.room && phone.room.state === 'joining') endRoom('signaling-lost', false);
      if (phone.room) setRoomState('reconnecting');
      if (phone.stopped) return;
      if (e.code === 4001) {
        log('logged in elsewhere: this page stays offline', 'error');
        setConn('offline');
        if (phone.room) endRoom('signaling-lost', false);
        notify('You logged in on another page: this one is offline. Reload to use it here.', true);
        return;
      }
      if (e.code === 4002 || e.code === 4003) {
        // The token expired or was revoked: reconnect with a fresh one if
        // this (development) server hands them out, else log in again.
        freshToken().then(connect, () => {
          log('session ended (' + e.code + '): log in again', 'error');
          logout();
        });
        return;
      }
      const delay = Math.min(30000, 250 * 2 ** phone.reconnects) * (0.75 + Math.random() * 0.5);
      phone.reconnects++;
      log('signaling lost (' + e.code + '), reconnecting in ' + Math.round(delay) + ' ms');
      phone.reconnectTimer = setTimeout(connect, delay);
    };
  }

  const CONN_WORDS = { connecting: 'Connecting…', up: 'Online', down: 'Reconnecting…', offline: 'Offline' };

  // setConn shows the signaling connection: connecting, up, down (and
  // reconnecting) or offline (for good).
  function setConn(s) {
    const el = $('conn');
    el.textContent = CONN_WORDS[s] || s;
    el.className = 'pill ' + s;
    el.dataset.state = s;
    render();
  }

  function send(type, to, callID, data) {
    const ws = phone.ws;
    if (!ws || !phone.wsUp) {
      log('not sent (signaling down): ' + type);
      return false;
    }
    const m = { type, to, call: callID };
    if (data !== undefined) m.data = data;
    ws.send(JSON.stringify(m));
    return true;
  }

  function onMessage(m) {
    const d = m.data || {};
    if (m.type === 'ready') {
      phone.wsUp = true;
      phone.reconnects = 0;
      phone.iceServers = Array.isArray(d.iceServers) ? d.iceServers : [];
      phone.relayTTL = d.relayTTL || 0;
      phone.relayAt = Date.now();
      phone.protocol = Number.isInteger(d.protocol) ? d.protocol : 1;
      setConn('up');
      log('ready as ' + d.user + (phone.iceServers.length ? ' (' + phone.iceServers.length + ' ICE servers)' : ''));
      if (phone.room) rejoinRoom(phone.room);
      return;
    }
    if (m.type === 'relay-config') {
      if (Array.isArray(d.iceServers)) phone.iceServers = d.iceServers;
      phone.relayTTL = d.relayTTL || 0;
      phone.relayAt = Date.now();
      return;
    }
    if (m.type === 'error' && !m.call) {
      log('server error: ' + (d.code || '') + ' ' + (d.message || ''), 'error');
      return;
    }
    if (m.type === 'invite') {
      onInvite(m);
      return;
    }
    // Room messages (and the server's refusals of them) are told apart by
    // type: their `call` is the room's name.
    if (ROOM_TYPES.has(m.type) || (m.type === 'error' && ROOM_REQUESTS.has(d.rejected))) {
      onRoomMessage(m);
      return;
    }
    const c = phone.call;
    if (!c || c.id !== m.call) return; // another (stale) call: ignored by construction
    switch (m.type) {
      case 'waiting':
      case 'ringing':
        if (c.outgoing && c.state === 'dialing') setCallState('waiting');
        break;
      case 'offline':
      case 'push-failed':
      case 'busy':
        if (c.outgoing && (c.state === 'dialing' || c.state === 'waiting')) endCall(m.type, false);
        break;
      case 'decline':
        if (c.outgoing && (c.state === 'dialing' || c.state === 'waiting')) endCall('declined', false);
        break;
      case 'accept':
        if (c.outgoing && (c.state === 'dialing' || c.state === 'waiting')) {
          clearTimeout(c.ringTimer);
          startMedia(c);
        }
        break;
      case 'cancel':
        if (!c.outgoing) endCall(d.reason === 'no-answer' ? 'no-answer' : 'cancelled', false);
        break;
      case 'hangup':
        endCall(d.reason === 'ice-failed' || d.reason === 'connect-timeout' ? d.reason : 'remote-hangup', false);
        break;
      case 'signal':
        if (!c.pc) {
          if (c.early.length < 256) c.early.push(d);
        } else {
          queueSignal(c, d);
        }
        break;
      case 'error':
        log('server rejected ' + (d.rejected || 'a message') + ': ' + (d.code || ''), 'error');
        if (d.rejected === 'invite' && c.state === 'dialing') endCall('error', false, 'the server refused it: ' + (d.code || 'no reason given'));
        break;
    }
  }

  function onInvite(m) {
    if (phone.call || phone.room) {
      send('busy', m.from, m.call);
      log('busy: ' + m.from + ' called while in a ' + (phone.call ? 'call' : 'room'));
      return;
    }
    const c = newCall(m.call, m.from, false);
    c.displayName = (m.data && m.data.displayName) || m.from;
    phone.call = c;
    send('ringing', m.from, m.call);
    freshenRelay();
    c.ringTimer = setTimeout(() => endCall('no-answer', false), RING_GUARD_MS);
    setCallState('ringing');
    startRinger();
    log('incoming call from ' + c.displayName);
  }

  // ------------------------------------------------------------------ calls

  function newCall(id, peer, outgoing) {
    return {
      id,
      peer,
      outgoing,
      state: 'idle',
      displayName: '',
      link: null, // the peer connection and its negotiation (newLink)
      pc: null, // link.pc
      dc: null, // link.dc
      mic: null,
      remote: null,
      early: [], // signals before the link exists
      ringTimer: 0,
      connectTimer: 0,
      statsTimer: 0,
      started: performance.now(),
      connectedAt: 0,
      stats: {},
      history: [], // stats samples for the quality graph, oldest first
      muted: false,
    };
  }

  // freshenRelay asks for new TURN credentials when the current ones are
  // past half their lifetime; the answer (relay-config) comes before the
  // callee answers and media starts.
  function freshenRelay() {
    if (phone.relayTTL > 0 && Date.now() - phone.relayAt > phone.relayTTL * 500) send('relay');
  }

  async function dial(peer) {
    if (phone.call || phone.room) return;
    if (peer === phone.user) {
      notify("You can't call yourself", true);
      return;
    }
    if (!phone.wsUp) {
      log('cannot call: signaling is down', 'error');
      notify('Not connected to the server: calling works again once it is back.', true);
      return;
    }
    clearChat();
    phone.notice = null;
    const c = newCall(newCallID(), peer, true);
    phone.call = c;
    setCallState('dialing');
    ensureAudioContext();
    try {
      c.mic = await getMic();
    } catch (e) {
      endCall('error', false, 'microphone: ' + e.message);
      return;
    }
    if (phone.call !== c) {
      stopStream(c.mic);
      return;
    }
    attachMeter('mic', c.mic);
    freshenRelay();
    send('invite', peer, c.id, { displayName: phone.user });
    c.ringTimer = setTimeout(() => {
      send('cancel', c.peer, c.id, { reason: 'no-answer' });
      endCall('no-answer', false);
    }, RING_TIMEOUT_MS);
    log('calling ' + peer);
  }

  async function answer() {
    const c = phone.call;
    if (!c || c.outgoing || c.state !== 'ringing') return;
    clearTimeout(c.ringTimer);
    stopRinger();
    clearChat();
    setCallState('connecting');
    ensureAudioContext();
    try {
      c.mic = await getMic();
    } catch (e) {
      send('decline', c.peer, c.id, { reason: 'error' });
      endCall('error', false, 'microphone: ' + e.message);
      return;
    }
    if (phone.call !== c) {
      stopStream(c.mic); // the caller cancelled while we opened the mic
      return;
    }
    attachMeter('mic', c.mic);
    // accept goes out before our first signal.
    send('accept', c.peer, c.id);
    startMedia(c);
  }

  function decline() {
    const c = phone.call;
    if (!c || c.outgoing || c.state !== 'ringing') return;
    send('decline', c.peer, c.id, { reason: 'declined' });
    endCall('declined', false);
  }

  // hangup ends the call from our side with the message its state calls for.
  function hangup() {
    if (phone.call) endCall('hangup', true);
  }

  function endCall(reason, tell, detail) {
    const c = phone.call;
    if (!c) return;
    if (tell) {
      if (c.state === 'dialing' || c.state === 'waiting') {
        send('cancel', c.peer, c.id, { reason: 'cancelled' });
        reason = 'cancelled';
      } else if (c.state === 'ringing') {
        send('decline', c.peer, c.id, { reason: 'declined' });
        reason = 'declined';
      } else {
        send('hangup', c.peer, c.id, { reason });
      }
    }
    phone.call = null;
    clearTimeout(c.ringTimer);
    clearTimeout(c.connectTimer);
    clearInterval(c.statsTimer);
    stopRinger();
    if (c.link) closeLink(c.link);
    stopStream(c.mic);
    detachMeters();
    $('remote-audio').srcObject = null;
    c.state = 'ended';
    phone.lastCall = {
      id: c.id,
      peer: c.peer,
      outgoing: c.outgoing,
      reason,
      detail: detail || '',
      connectedMs: c.connectedAt ? Math.round(c.connectedAt - c.started) : null,
      durationMs: c.connectedAt ? Math.round(performance.now() - c.connectedAt) : 0,
      stats: c.stats,
    };
    log('call ended: ' + reason + (detail ? ' (' + detail + ')' : ''));
    const bad = !['hangup', 'remote-hangup', 'cancelled', 'declined'].includes(reason) || (reason === 'declined' && c.outgoing);
    notify(endSentence(c, reason, detail, phone.lastCall.durationMs), bad);
  }

  // endSentence says in plain words how call c ended.
  function endSentence(c, reason, detail, durationMs) {
    const who = c.displayName && c.displayName !== c.peer ? c.displayName : c.peer;
    const took = c.connectedAt ? ' · ' + fmtDuration(durationMs) : '';
    switch (reason) {
      case 'hangup':
        return 'Call ended' + took;
      case 'remote-hangup':
        return who + ' hung up' + took;
      case 'cancelled':
        return c.outgoing ? 'Call cancelled' : 'Missed call from ' + who;
      case 'declined':
        return c.outgoing ? who + ' declined the call' : 'You declined ' + who + "'s call";
      case 'busy':
        return who + ' is busy on another call';
      case 'offline':
        return who + ' is not online';
      case 'push-failed':
        return who + ' is not online and could not be woken up';
      case 'no-answer':
        return c.outgoing ? who + ' did not answer' : 'Missed call from ' + who;
      case 'signaling-lost':
        return 'Call to ' + who + ' failed: the connection to the server was lost';
      case 'ice-failed':
        return c.connectedAt ? 'Call dropped: the connection to ' + who + ' was lost' + took : 'Could not connect to ' + who + ': the network between you blocks calls';
      case 'connect-timeout':
        return 'Could not connect to ' + who + ' in time: the network between you may block calls';
    }
    return 'The call failed' + (detail ? ': ' + detail : '');
  }

  // fmtDuration is m:ss (h:mm:ss past an hour).
  function fmtDuration(ms) {
    const s = Math.floor(ms / 1000);
    const mm = Math.floor(s / 60) % 60;
    const ss = String(s % 60).padStart(2, '0');
    return s >= 3600 ? Math.floor(s / 3600) + ':' + String(mm).padStart(2, '0') + ':' + ss : mm + ':' + ss;
  }

  function setCallState(s) {
    const c = phone.call;
    if (!c || c.state === s) return;
    c.state = s;
    log('call ' + s);
    render();
  }

  async function getMic() {
    return navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      video: false,
    });
  }

  function stopStream(s) {
    if (s) s.getTracks().forEach((t) => t.stop());
  }

  // startMedia creates the call's link: our microphone track, the
  // pre-negotiated "text" channel and the negotiation with the peer.
  function startMedia(c) {
    // The callee lets the caller make the first offer (both the Go phone
    // and this page offer as soon as they see `accept`).
    const l = newLink({
      label: '',
      polite: !c.outgoing, // the callee is polite, as on the Go side
      waitForOffer: !c.outgoing,
      mic: c.mic,
      send: (sig) => send('signal', c.peer, c.id, sig),
      onTrack: (stream) => {
        c.remote = stream;
        const el = $('remote-audio');
        el.srcObject = stream;
        el.play().catch((err) => log('audio playback: ' + err.message));
        attachMeter('remote', stream);
      },
      onText: (text) => {
        phone.texts.push(text);
        chat(c.displayName || c.peer, text, false);
      },
      onChannel: () => render(),
      onState: (s) => {
        if (phone.call !== c) return;
        switch (s) {
          case 'connected':
            clearTimeout(c.connectTimer);
            if (!c.connectedAt) {
              c.connectedAt = performance.now();
              log('media connected after ' + Math.round(c.connectedAt - c.started) + ' ms');
            }
            setCallState('connected');
            break;
          case 'disconnected':
            if (c.state === 'connected') setCallState('reconnecting');
            break;
          case 'reconnecting':
            setCallState('reconnecting');
            break;
          case 'failed':
            endCall('ice-failed', true);
            break;
        }
      },
    });
    c.link = l;
    c.pc = l.pc;
    c.dc = l.dc;

    c.connectTimer = setTimeout(() => {
      if (phone.call === c && !c.connectedAt) endCall('connect-timeout', true);
    }, CONNECT_TIMEOUT_MS);
    c.statsTimer = setInterval(() => collectStats(c), STATS_INTERVAL_MS);
    if (c.state !== 'connecting') setCallState('connecting');

    const early = c.early;
    c.early = [];
    for (const d of early) queueSignal(c, d);
    render();
  }

  function queueSignal(c, d) {
    linkSignal(c.link, d);
  }

  // ------------------------------------------------------------------ links

  // newLink creates one RTCPeerConnection and runs W3C perfect negotiation
  // on it: for a 1:1 call, and for each member of a room. It adds our
  // microphone track and the pre-negotiated "text" channel (id 0), trickles
  // candidates, holds the remote candidates that come before a remote
  // description of their ICE generation, and restarts ICE when it fails.
  //
  // cfg: label (prefix of its log lines), polite, waitForOffer (leave the
  // first offer to the far side), mic (MediaStream), send(signal) (the
  // `data` of a `signal`: {description} or {candidate}), onTrack(stream),
  // onText(text), onChannel() (the channel opened or closed), onState(s):
  // 'connected', 'disconnected', 'reconnecting' (an ICE restart), 'failed'
  // (the restarts did not help).
  function newLink(cfg) {
    const pc = new RTCPeerConnection({ iceServers: phone.iceServers });
    const l = {
      cfg,
      pc,
      dc: null,
      closed: false,
      chain: Promise.resolve(), // signals are applied one at a time, in order
      makingOffer: false,
      ignoreOffer: false,
      settingRemoteAnswer: false,
      waitForOffer: !!cfg.waitForOffer,
      offerTimer: 0,
      candidates: [], // remote candidates held for their description
      iceRestarts: 0,
    };
    for (const t of cfg.mic.getAudioTracks()) pc.addTrack(t, cfg.mic);
    l.dc = pc.createDataChannel('text', { negotiated: true, id: 0 });
    l.dc.onopen = () => cfg.onChannel && cfg.onChannel();
    l.dc.onclose = () => cfg.onChannel && cfg.onChannel();
    l.dc.onmessage = (e) => {
      if (typeof e.data === 'string') cfg.onText(e.data);
    };
    pc.ontrack = (e) => {
      if (e.track.kind !== 'audio' || l.closed) return;
      cfg.onTrack(e.streams[0] || new MediaStream([e.track]));
    };
    pc.onicecandidate = ({ candidate }) => {
      if (l.closed || !candidate || !candidate.candidate) return;
      linkLog(l, 'local candidate ' + candidate.address + ':' + candidate.port + ' ' + candidate.protocol + ' ' + candidate.type);
      cfg.send({ candidate: candidate.toJSON() });
    };

    // A glare on the very first offer is legal, but Chrome then sometimes
    // never gathers candidates for its answer: the side that waits for the
    // first offer offers after all only if none comes.
    if (l.waitForOffer) {
      l.offerTimer = setTimeout(() => {
        if (l.closed || !l.waitForOffer) return;
        l.waitForOffer = false;
        makeOffer(l);
      }, FIRST_OFFER_WAIT_MS);
    }
    pc.onnegotiationneeded = () => makeOffer(l);

    pc.oniceconnectionstatechange = () => linkLog(l, 'ICE ' + pc.iceConnectionState);
    pc.onicegatheringstatechange = () => linkLog(l, 'ICE gathering ' + pc.iceGatheringState);
    pc.onicecandidateerror = (e) => linkLog(l, 'ICE candidate error ' + e.errorCode + ' ' + e.errorText);
    pc.onsignalingstatechange = () => linkLog(l, 'signaling state ' + pc.signalingState);
    pc.onconnectionstatechange = () => {
      if (l.closed) return;
      switch (pc.connectionState) {
        case 'connected':
          l.iceRestarts = 0;
          cfg.onState('connected');
          break;
        case 'disconnected':
          cfg.onState('disconnected');
          break;
        case 'failed':
          if (l.iceRestarts < MAX_ICE_RESTARTS) {
            l.iceRestarts++;
            cfg.onState('reconnecting');
            pc.restartIce();
          } else {
            cfg.onState('failed');
          }
          break;
      }
    };
    return l;
  }

  function linkLog(l, msg, cls) {
    log(l.cfg.label ? l.cfg.label + ': ' + msg : msg, cls);
  }

  function closeLink(l) {
    if (l.closed) return;
    l.closed = true;
    clearTimeout(l.offerTimer);
    l.pc.close();
  }

  // linkSignal queues a signal from the far side; signals are applied one
  // at a time, in arrival order.
  function linkSignal(l, d) {
    l.chain = l.chain.then(() => applySignal(l, d));
  }

  async function makeOffer(l) {
    if (l.waitForOffer || l.closed) return;
    try {
      l.makingOffer = true;
      await l.pc.setLocalDescription();
      if (l.closed) return;
      linkLog(l, 'sending ' + l.pc.localDescription.type);
      l.cfg.send({ description: l.pc.localDescription.toJSON() });
    } catch (err) {
      linkLog(l, 'offer failed: ' + err.message, 'error');
    } finally {
      l.makingOffer = false;
    }
  }

  // applySignal is the W3C perfect negotiation pattern.
  async function applySignal(l, d) {
    const pc = l.pc;
    if (l.closed || pc.signalingState === 'closed' || !d || typeof d !== 'object') return;
    try {
      if (d.description) {
        const desc = d.description;
        linkLog(l, 'received ' + desc.type);
        if (desc.type === 'offer') {
          l.waitForOffer = false;
          clearTimeout(l.offerTimer);
        }
        const readyForOffer = !l.makingOffer && (pc.signalingState === 'stable' || l.settingRemoteAnswer);
        const collision = desc.type === 'offer' && !readyForOffer;
        l.ignoreOffer = !l.cfg.polite && collision;
        if (l.ignoreOffer) {
          linkLog(l, 'colliding offer ignored (impolite)');
          return;
        }
        l.settingRemoteAnswer = desc.type === 'answer';
        await pc.setRemoteDescription(desc); // rolls back our own offer when polite
        l.settingRemoteAnswer = false;
        if (desc.type === 'offer') {
          await pc.setLocalDescription();
          if (l.closed) return;
          linkLog(l, 'sending answer');
          l.cfg.send({ description: pc.localDescription.toJSON() });
        }
        await applyHeldCandidates(l);
      } else if (d.candidate) {
        linkLog(l, 'remote candidate ' + String(d.candidate.candidate).split(' ').slice(4, 8).join(' '));
        if (!candidateReady(pc, d.candidate)) {
          l.candidates.push(d.candidate);
          if (l.candidates.length > MAX_HELD_CANDIDATES) l.candidates.shift();
          return;
        }
        await addCandidate(l, d.candidate);
      }
    } catch (err) {
      l.settingRemoteAnswer = false;
      linkLog(l, 'signal not applied: ' + err.message, 'error');
    }
  }

  async function addCandidate(l, cand) {
    try {
      await l.pc.addIceCandidate(cand);
    } catch (err) {
      if (!l.ignoreOffer) linkLog(l, 'candidate not applied: ' + err.message);
    }
  }

  // candidateReady reports whether a remote description of cand's ICE
  // generation is applied (a candidate without usernameFragment belongs
  // to the current one).
  function candidateReady(pc, cand) {
    const desc = pc.remoteDescription;
    if (!desc) return false;
    if (!cand.usernameFragment) return true;
    const m = /^a=ice-ufrag:(\S+)/m.exec(desc.sdp);
    return !m || m[1] === cand.usernameFragment;
  }

  async function applyHeldCandidates(l) {
    const held = l.candidates;
    l.candidates = [];
    for (const cand of held) {
      if (candidateReady(l.pc, cand)) await addCandidate(l, cand);
      else l.candidates.push(cand);
    }
  }

  function setMuted(on) {
    const c = phone.call;
    if (!c || !c.mic) return;
    c.muted = on;
    c.mic.getAudioTracks().forEach((t) => (t.enabled = !on));
    render();
  }

  // openChannels are the open text channels: the call's, or those of the
  // room's members.
  function openChannels() {
    const c = phone.call;
    const r = phone.room;
    const open = [];
    if (c && c.dc && c.dc.readyState === 'open') open.push(c.dc);
    if (r) for (const mb of r.members.values()) if (mb.link && mb.link.dc.readyState === 'open') open.push(mb.link.dc);
    return open;
  }

  // sendText sends text to the peer of the call, or to every member of the
  // room whose channel is open.
  function sendText(text) {
    if (!text) return false;
    const open = openChannels();
    if (!open.length) return false;
    for (const dc of open) dc.send(text);
    chat(phone.user, text, true);
    return true;
  }

  // ------------------------------------------------------------------ rooms

  // A roster is the room's member list as we see it, kept like
  // signaling.Roster: an event about a member is applied only when its seq
  // is above both the member list's and the last event applied about that
  // member, and events that come before the member list are held for it.
  function newRoster(room, self) {
    return { room, self, seq: 0, session: 0, listed: false, members: new Map(), last: new Map(), held: [] };
  }

  // wireMember is a member from the server, or null when malformed.
  function wireMember(x) {
    if (!x || typeof x !== 'object' || typeof x.user !== 'string' || !x.user || !Number.isInteger(x.session)) return null;
    return {
      user: x.user,
      displayName: typeof x.displayName === 'string' ? x.displayName : '',
      muted: x.muted === true,
      session: x.session,
    };
  }

  function rosterMembers(r) {
    return [...r.members.values()].sort((a, b) => a.session - b.session);
  }

  // rosterApply applies a room message and returns the changes, in order,
  // about the other members ({type, member, reason}), and a member-left
  // about ourselves (the room is over for us). Malformed messages change
  // nothing.
  function rosterApply(r, m) {
    const d = m.data;
    if (m.call !== r.room || !d || typeof d !== 'object' || !Number.isInteger(d.seq)) return [];
    if (m.type === 'members') {
      if (!Array.isArray(d.members) || !Number.isInteger(d.session)) return [];
      const list = d.members.map(wireMember);
      if (list.includes(null)) return [];
      return rosterList(r, d.seq, d.session, d.resumed === true, list);
    }
    const ev = { type: m.type, seq: d.seq, member: wireMember(d.member), reason: typeof d.reason === 'string' ? d.reason : '' };
    if (!ev.member) return [];
    if (!r.listed) {
      if (r.held.length < MAX_HELD_EVENTS) r.held.push(ev);
      return [];
    }
    return rosterEvent(r, ev);
  }

  function rosterList(r, seq, session, resumed, list) {
    const out = [];
    const now = new Map(list.map((x) => [x.user, x]));
    for (const old of rosterMembers(r)) {
      const x = now.get(old.user);
      if (old.user === r.self || (x && resumed && x.session === old.session)) continue;
      // Gone, or a new membership of either side: the old link is over.
      out.push({ type: 'member-left', member: old, reason: '' });
    }
    for (const x of list) {
      if (x.user === r.self) continue;
      const old = r.members.get(x.user);
      if (!old || !resumed || old.session !== x.session) {
        out.push({ type: 'member-joined', member: x });
      } else if (old.displayName !== x.displayName || old.muted !== x.muted) {
        out.push({ type: 'member-updated', member: x });
      }
    }
    r.members = now;
    r.seq = seq;
    r.session = session;
    r.listed = true;
    const held = r.held;
    r.held = [];
    held.sort((a, b) => a.seq - b.seq);
    for (const ev of held) out.push(...rosterEvent(r, ev));
    return out;
  }

  function rosterEvent(r, ev) {
    const u = ev.member.user;
    if (ev.seq <= r.seq || ev.seq <= (r.last.get(u) || 0)) return []; // in the list already, or older
    r.last.set(u, ev.seq);
    const old = r.members.get(u);
    switch (ev.type) {
      case 'member-joined':
        r.members.set(u, ev.member);
        if (u === r.self) return [];
        if (old) return [{ type: 'member-left', member: old, reason: '' }, { type: 'member-joined', member: ev.member }];
        return [{ type: 'member-joined', member: ev.member }];
      case 'member-left':
        if (!old || old.session !== ev.member.session) return [];
        r.members.delete(u);
        return [{ type: 'member-left', member: old, reason: ev.reason }];
      case 'member-updated':
        if (!old || old.session !== ev.member.session) return [];
        r.members.set(u, ev.member);
        if (u === r.self) return [];
        return [{ type: 'member-updated', member: ev.member }];
    }
    return [];
  }

  async function joinRoom(name) {
    if (phone.room || phone.call) return;
    if (!ROOM_NAME.test(name)) {
      log('not a room name: ' + name, 'error');
      notify('A room name is letters, digits, ".", "_" or "-".', true);
      return;
    }
    if (!phone.wsUp) {
      log('cannot join: signaling is down', 'error');
      notify('Not connected to the server: joining works again once it is back.', true);
      return;
    }
    if (phone.protocol < 2) {
      log('this server has no rooms (protocol ' + phone.protocol + ')', 'error');
      notify('This server has no rooms.', true);
      return;
    }
    clearChat();
    phone.notice = null;
    const r = {
      name,
      state: 'joining', // joining, joined, reconnecting
      roster: newRoster(name, phone.user),
      members: new Map(), // user → member (memberJoined)
      early: new Map(), // user → room-signals before its member-joined
      mic: null,
      muted: false,
      joinSent: false,
      joinTimer: 0,
    };
    phone.room = r;
    ensureAudioContext();
    render();
    try {
      r.mic = await getMic();
    } catch (e) {
      endRoom('error', false, 'microphone: ' + e.message);
      return;
    }
    if (phone.room !== r) {
      stopStream(r.mic);
      return;
    }
    r.mic.getAudioTracks().forEach((t) => (t.enabled = !r.muted));
    attachMeter('room-mic', r.mic);
    attachMeter('room'); // every member's audio, mixed
    freshenRelay();
    sendJoin(r);
    r.joinTimer = setTimeout(() => {
      if (phone.room === r && r.state === 'joining') endRoom('connect-timeout', true);
    }, CONNECT_TIMEOUT_MS);
    log('joining room ' + name);
  }

  function sendJoin(r) {
    r.joinSent = send('join', undefined, r.name, { displayName: phone.user, muted: r.muted }) || r.joinSent;
  }

  // rejoinRoom takes the membership back after signaling reconnected:
  // within the server's grace the members and our links carry on.
  function rejoinRoom(r) {
    if (!r.joinSent) return;
    r.roster.listed = false;
    sendJoin(r);
  }

  function leaveRoom() {
    if (phone.room) endRoom('left', true);
  }

  // endRoom leaves the room at once: the server and (through it) the
  // members are told when tell is set; every link is closed.
  function endRoom(reason, tell, detail) {
    const r = phone.room;
    if (!r) return;
    // Sent even before the member list came back: the server handles our
    // messages in order, so it follows the join it may have accepted.
    if (tell && r.joinSent) send('leave', undefined, r.name);
    phone.room = null;
    clearTimeout(r.joinTimer);
    for (const mb of r.members.values()) dropMember(mb);
    r.members.clear();
    stopStream(r.mic);
    detachMeter('room-mic');
    detachMeter('room');
    phone.lastRoom = { name: r.name, reason, detail: detail || '' };
    log('room ' + r.name + ' ended: ' + reason + (detail ? ' (' + detail + ')' : ''));
    notify(roomEndSentence(r.name, reason, detail), reason !== 'left');
  }

  const ROOM_REFUSALS = {
    'unknown-room': 'there is no such room',
    forbidden: 'you may not join it',
    'room-full': 'it is full',
    'in-room': 'you are in another room (on another page?)',
    unavailable: 'the server could not reach its room store; try again',
    'bad-room': 'that is not a room name',
  };

  // roomEndSentence says in plain words why we are out of a room.
  function roomEndSentence(name, reason, detail) {
    switch (reason) {
      case 'left':
        return 'You left room ' + name;
      case 'gone':
        return 'You were out of room ' + name + ' too long and dropped from it';
      case 'signaling-lost':
        return 'Room ' + name + ': the connection to the server was lost';
      case 'connect-timeout':
        return 'Could not join room ' + name + ': the server did not answer';
      case 'error':
        return 'Could not join room ' + name + (detail ? ': ' + (ROOM_REFUSALS[detail] || detail) : '');
    }
    return 'Room ' + name + ' ended: ' + reason;
  }

  function setRoomState(s) {
    const r = phone.room;
    if (!r || r.state === s) return;
    r.state = s;
    log('room ' + s);
    render();
  }

  function onRoomMessage(m) {
    const r = phone.room;
    if (!r || r.name !== m.call) return; // a room we are not in
    if (m.type === 'error') {
      onRoomError(r, m.data || {});
      return;
    }
    if (m.type === 'room-signal') {
      onRoomSignal(r, m);
      return;
    }
    const changes = rosterApply(r.roster, m);
    if (m.type === 'members' && r.roster.listed) {
      clearTimeout(r.joinTimer);
      setRoomState('joined');
    }
    for (const ch of changes) {
      if (ch.member.user === phone.user) {
        if (ch.type === 'member-left') {
          endRoom('gone', false); // the server removed us (past its grace)
          return;
        }
        continue;
      }
      if (ch.type === 'member-joined') memberJoined(r, ch.member);
      else if (ch.type === 'member-left') memberLeft(r, ch.member, ch.reason);
      else if (ch.type === 'member-updated') memberUpdated(r, ch.member);
    }
    render();
  }

  function onRoomError(r, d) {
    if (d.code === 'rate-limited') {
      log('server delayed a room message (rate limit): ' + d.rejected);
      return;
    }
    if (d.rejected !== 'join') {
      // A mute or room-signal refused: the roster's events settle it.
      log('server refused ' + d.rejected + ': ' + (d.code || ''), 'error');
      return;
    }
    endRoom('error', false, d.code || 'join refused');
  }

  // memberJoined sets up the link with a member. Both sides compute the
  // roles from the two sessions as call.Room does: the later joiner (the
  // higher session) offers and is impolite, the earlier one waits for its
  // offer and is polite.
  function memberJoined(r, x) {
    const old = r.members.get(x.user);
    if (old) {
      dropMember(old); // a new membership of a member whose leave we never saw
      r.members.delete(x.user);
    }
    const mb = {
      ...x,
      r,
      offerer: r.roster.session > x.session,
      attempt: 0, // the pair's peer connection, as in room-signal's attempt
      failures: 0, // failed attempts since the pair last connected
      state: 'connecting',
      talking: false,
      loudAt: 0,
      link: null,
      audio: null,
      src: null,
      meter: null,
      connectTimer: 0,
      retryTimer: 0,
    };
    r.members.set(x.user, mb);
    log((x.displayName || x.user) + ' is in the room');
    memberLink(r, mb);
    const held = r.early.get(x.user) || [];
    r.early.delete(x.user);
    for (const rs of held) if (rs.session === x.session) routeSignal(r, mb, rs);
  }

  // memberLink makes the link with a member for its current attempt: the
  // member with the higher session (the later joiner) offers.
  function memberLink(r, mb) {
    const mine = r.roster.session;
    const attempt = mb.attempt;
    const current = () => phone.room === r && r.members.get(mb.user) === mb && mb.attempt === attempt;
    mb.link = newLink({
      label: mb.user,
      polite: !mb.offerer,
      waitForOffer: !mb.offerer,
      mic: r.mic,
      send: (sig) => {
        const data = { session: mine, peerSession: mb.session, signal: sig };
        if (attempt > 0) data.attempt = attempt;
        send('room-signal', mb.user, r.name, data);
      },
      onTrack: (stream) => {
        if (current()) memberAudio(mb, stream);
      },
      onText: (text) => {
        phone.texts.push(text);
        chat(mb.displayName || mb.user, text, false);
      },
      onChannel: () => render(),
      onState: (s) => {
        if (current()) memberState(r, mb, s);
      },
    });
    mb.connectTimer = setTimeout(() => {
      if (current() && mb.link && mb.state !== 'connected') memberFailed(mb, 'no media within ' + CONNECT_TIMEOUT_MS / 1000 + ' s');
    }, CONNECT_TIMEOUT_MS);
  }

  // startOver replaces the link with a member by a new one, attempt
  // attempt: after our failure (the offerer, on its retry timer), or when
  // the member's signals of a later attempt come.
  function startOver(r, mb, attempt) {
    const live = mb.state === 'connected';
    dropMember(mb);
    mb.attempt = attempt;
    mb.state = live ? 'reconnecting' : 'connecting';
    log(mb.user + ': new link (attempt ' + attempt + ')');
    memberLink(r, mb);
    render();
  }

  // routeSignal hands a room-signal to the link of its attempt: one of an
  // earlier attempt is dropped, one of a later attempt starts over first.
  function routeSignal(r, mb, d) {
    const attempt = Number.isInteger(d.attempt) && d.attempt > 0 ? d.attempt : 0;
    if (attempt < mb.attempt) return;
    if (attempt > mb.attempt) startOver(r, mb, attempt);
    if (mb.link) linkSignal(mb.link, d.signal);
  }

  function memberLeft(r, x, reason) {
    r.early.delete(x.user);
    const mb = r.members.get(x.user);
    if (!mb || mb.session !== x.session) return;
    dropMember(mb);
    r.members.delete(x.user);
    log((mb.displayName || mb.user) + ' left the room (' + (reason || 'gone') + ')');
  }

  function memberUpdated(r, x) {
    const mb = r.members.get(x.user);
    if (!mb || mb.session !== x.session) return;
    if (mb.muted !== x.muted) log(x.user + (x.muted ? ' muted' : ' unmuted'));
    mb.muted = x.muted;
    mb.displayName = x.displayName;
  }

  function memberState(r, mb, s) {
    switch (s) {
      case 'connected':
        clearTimeout(mb.connectTimer);
        if (mb.state !== 'connected') log(mb.user + ': media connected');
        mb.state = 'connected';
        mb.failures = 0;
        break;
      case 'disconnected':
      case 'reconnecting':
        if (mb.state === 'connected') mb.state = 'reconnecting';
        break;
      case 'failed':
        memberFailed(mb, 'ice-failed');
        return;
    }
    render();
  }

  // memberFailed gives up on the link with a member, which stays in the
  // room unheard while the pair starts over, as on the Go side: the
  // offerer makes a new link after a pause that doubles with each failure
  // (PAIR_RETRY_FIRST_MS up to PAIR_RETRY_MAX_MS); the other side follows
  // its signals (routeSignal).
  function memberFailed(mb, why) {
    log(mb.user + ': link failed (' + why + ')', 'error');
    dropMember(mb);
    mb.state = 'failed';
    mb.failures++;
    if (mb.offerer) {
      const r = mb.r;
      const attempt = mb.attempt;
      const delay = Math.min(PAIR_RETRY_FIRST_MS * 2 ** (mb.failures - 1), PAIR_RETRY_MAX_MS);
      mb.retryTimer = setTimeout(() => {
        if (phone.room === r && r.members.get(mb.user) === mb && mb.attempt === attempt && mb.state === 'failed') startOver(r, mb, attempt + 1);
      }, delay);
    }
    render();
  }

  // memberAudio plays a member's stream on its own <audio> element and
  // measures it, alone (talking) and in the room's mix meter.
  function memberAudio(mb, stream) {
    if (!mb.audio) {
      mb.audio = document.createElement('audio');
      mb.audio.autoplay = true;
      mb.audio.dataset.user = mb.user;
      $('room-audio').appendChild(mb.audio);
    }
    mb.audio.srcObject = stream;
    mb.audio.play().catch((err) => log(mb.user + ': audio playback: ' + err.message));
    if (mb.src) mb.src.disconnect();
    if (!mb.meter) {
      mb.meter = newMeter(null, null, (m) => {
        const now = performance.now();
        if (m.db > TALK_DB) mb.loudAt = now;
        const talking = mb.loudAt > 0 && now - mb.loudAt < TALK_HOLD_MS;
        if (talking !== mb.talking) {
          mb.talking = talking;
          render();
        }
      });
    }
    mb.src = mb.meter.an.context.createMediaStreamSource(stream);
    mb.src.connect(mb.meter.an);
    if (phone.meters.room) mb.src.connect(phone.meters.room.an);
  }

  // dropMember closes a member's link and stops its audio.
  function dropMember(mb) {
    clearTimeout(mb.connectTimer);
    clearTimeout(mb.retryTimer);
    if (mb.link) closeLink(mb.link);
    mb.link = null;
    if (mb.src) mb.src.disconnect();
    mb.src = null;
    if (mb.meter) closeMeter(mb.meter);
    mb.meter = null;
    if (mb.audio) {
      mb.audio.srcObject = null;
      mb.audio.remove();
    }
    mb.audio = null;
    mb.talking = false;
  }

  // onRoomSignal hands a room-signal to its member's link. One for an
  // earlier membership (of ours or the sender's) is dropped; one whose
  // member-joined has not come yet (it may travel through another server
  // node) is held for it.
  function onRoomSignal(r, m) {
    const d = m.data;
    if (!m.from || !d || typeof d !== 'object' || !d.signal || typeof d.signal !== 'object') return;
    if (d.peerSession !== r.roster.session) return;
    const mb = r.members.get(m.from);
    if (!mb || mb.session !== d.session) {
      const known = r.roster.members.get(m.from);
      if (known && known.session === d.session) return; // its link failed
      const q = r.early.get(m.from);
      if (q && q.length < MAX_EARLY_SIGNALS) q.push(d);
      else if (!q && r.early.size < MAX_EARLY_SIGNALS) r.early.set(m.from, [d]);
      return;
    }
    routeSignal(r, mb, d);
  }

  function setRoomMuted(on) {
    const r = phone.room;
    if (!r) return;
    r.muted = on;
    if (r.mic) r.mic.getAudioTracks().forEach((t) => (t.enabled = !on));
    log(on ? 'muted' : 'unmuted');
    // After a join still unanswered too: the server handles our messages
    // in order, so the mute follows the membership.
    if (r.joinSent) send('mute', undefined, r.name, { muted: on });
    render();
  }

  // ------------------------------------------------------------------ stats

  async function collectStats(c) {
    if (!c.pc || phone.call !== c) return;
    let report;
    try {
      report = await c.pc.getStats();
    } catch (err) {
      return;
    }
    const s = { time: Date.now() };
    let pairID = '';
    const codecs = {};
    report.forEach((r) => {
      if (r.type === 'transport') {
        if (r.selectedCandidatePairId) pairID = r.selectedCandidatePairId;
        s.pairChanges = r.selectedCandidatePairChanges;
      }
      if (r.type === 'codec') codecs[r.id] = r.mimeType;
    });
    report.forEach((r) => {
      if (r.type === 'candidate-pair' && (r.id === pairID || (!pairID && r.nominated && r.state === 'succeeded'))) {
        if (r.currentRoundTripTime !== undefined) s.rtt = r.currentRoundTripTime;
      } else if (r.type === 'inbound-rtp' && r.kind === 'audio') {
        s.jitter = r.jitter;
        s.packetsLost = r.packetsLost;
        s.packetsReceived = r.packetsReceived;
        s.audioLevel = r.audioLevel;
        s.totalAudioEnergy = r.totalAudioEnergy;
        s.totalSamplesDuration = r.totalSamplesDuration;
        s.totalSamplesReceived = r.totalSamplesReceived;
        s.concealedSamples = r.concealedSamples;
        s.jitterBufferDelay = r.jitterBufferDelay;
        s.jitterBufferEmittedCount = r.jitterBufferEmittedCount;
        s.codec = codecs[r.codecId] || s.codec;
      } else if (r.type === 'outbound-rtp' && r.kind === 'audio') {
        s.packetsSent = r.packetsSent;
        s.codec = s.codec || codecs[r.codecId];
      } else if (r.type === 'remote-inbound-rtp' && r.kind === 'audio') {
        s.remoteRtt = r.roundTripTime;
        s.remoteFractionLost = r.fractionLost;
      } else if (r.type === 'media-source' && r.kind === 'audio') {
        s.micLevel = r.audioLevel;
      }
    });
    if (s.rtt === undefined && s.remoteRtt !== undefined) s.rtt = s.remoteRtt;
    quality(c.stats, s);
    c.stats = s;
    c.history.push(s);
    if (c.history.length > GRAPH_SAMPLES) c.history.shift();
    if (c.history.length === 1) render();
    renderStats(s);
    drawGraph(c.history);
  }

  // quality adds to sample s, from the one before it (prev): the packet
  // loss over the interval (percent) and the MOS estimate, the E-model as
  // call.MOS computes it: one-way delay from half the RTT, the jitter
  // buffer's delay and Opus's frame and look-ahead; the loss the network
  // caused (the page sees no FEC recovery figure).
  function quality(prev, s) {
    const lost = (s.packetsLost ?? 0) - (prev.packetsLost ?? 0);
    const got = (s.packetsReceived ?? 0) - (prev.packetsReceived ?? 0);
    if (prev.time && got >= 0 && lost >= 0 && got + lost > 0) s.lossPct = (100 * lost) / (got + lost);
    else if (prev.time && got > 0) s.lossPct = 0;
    let bufferMs = 0;
    const emitted = (s.jitterBufferEmittedCount ?? 0) - (prev.jitterBufferEmittedCount ?? 0);
    if (emitted > 0) bufferMs = (1000 * ((s.jitterBufferDelay ?? 0) - (prev.jitterBufferDelay ?? 0))) / emitted;
    if (s.rtt !== undefined && s.lossPct !== undefined) s.mos = mos((s.rtt * 1000) / 2 + bufferMs + OPUS_DELAY_MS, s.lossPct);
  }

  // mos is call.MOS: ITU-T G.107 simplified (see call/mos.go).
  function mos(oneWayMs, lossPct) {
    const ta = Math.max(0, oneWayMs);
    const ppl = Math.max(0, Math.min(100, lossPct));
    let id = 0.024 * ta;
    if (ta > 177.3) id += 0.11 * (ta - 177.3);
    const ieEff = (95 * ppl) / (ppl + 25.1);
    const r = 93.2 - id - ieEff;
    if (r <= 0) return 1;
    if (r >= 100) return 4.5;
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6;
  }

  function fmtMs(sec) {
    return sec === undefined ? '–' : Math.round(sec * 1000) + ' ms';
  }

  function renderStats(s) {
    $('stat-rtt').textContent = fmtMs(s.rtt);
    $('stat-jitter').textContent = fmtMs(s.jitter);
    $('stat-loss').textContent = s.lossPct === undefined ? '–' : s.lossPct.toFixed(1) + ' %';
    $('stat-mos').textContent = s.mos === undefined ? '–' : s.mos.toFixed(1);
    const more = [];
    if (s.codec) more.push(s.codec.replace(/^audio\//, ''));
    if (s.packetsReceived !== undefined) more.push(s.packetsReceived + ' packets in, ' + (s.packetsSent ?? 0) + ' out, ' + (s.packetsLost ?? 0) + ' lost');
    $('stat-more').textContent = more.join(' · ');
  }

  // The graph's lanes, top to bottom: each its own scale (value → 0..1,
  // clamped), colour (as in the figures above it) and label.
  const LANES = [
    { key: 'rtt', label: 'RTT', color: '#2d6cdf', scale: (s) => s.rtt / 0.4 }, // 0–400 ms
    { key: 'jitter', label: 'jitter', color: '#b7791f', scale: (s) => s.jitter / 0.1 }, // 0–100 ms
    { key: 'lossPct', label: 'loss', color: '#c53030', scale: (s) => s.lossPct / 10 }, // 0–10 %
    { key: 'mos', label: 'MOS', color: '#1d7f46', scale: (s) => (s.mos - 1) / 3.5 }, // 1–4.5
  ];

  // drawGraph draws the call's samples, newest on the right, one lane per
  // figure, at the canvas's size on screen.
  function drawGraph(history) {
    const cv = $('quality-graph');
    const w = cv.clientWidth;
    const h = cv.clientHeight;
    if (!w || !h) return;
    const dpr = window.devicePixelRatio || 1;
    if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
      cv.width = Math.round(w * dpr);
      cv.height = Math.round(h * dpr);
    }
    const g = cv.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const lane = h / LANES.length;
    // The first half minute fills the width from the left; later the
    // graph scrolls, up to GRAPH_SAMPLES samples.
    const slots = Math.min(GRAPH_SAMPLES, Math.max(30, history.length));
    const gutter = 40; // the lanes' labels
    const step = (w - gutter) / (slots - 1);
    g.font = '10px system-ui, sans-serif';
    g.textBaseline = 'top';
    LANES.forEach((ln, i) => {
      const top = i * lane;
      g.strokeStyle = '#e2e8f0';
      g.lineWidth = 1;
      g.beginPath();
      g.moveTo(0, top + lane - 0.5);
      g.lineTo(w, top + lane - 0.5);
      g.stroke();
      g.fillStyle = '#5b6672';
      g.fillText(ln.label, 4, top + 2);
      g.strokeStyle = ln.color;
      g.lineWidth = 1.5;
      g.beginPath();
      let pen = false;
      history.forEach((s, j) => {
        if (s[ln.key] === undefined) {
          pen = false;
          return;
        }
        const v = Math.max(0, Math.min(1, ln.scale(s)));
        const x = gutter + j * step;
        const y = top + lane - 2 - v * (lane - 4);
        if (pen) g.lineTo(x, y);
        else g.moveTo(x, y);
        pen = true;
      });
      g.stroke();
    });
  }

  // ----------------------------------------------------------------- meters

  function ensureAudioContext() {
    if (!phone.audioCtx) phone.audioCtx = new AudioContext();
    if (phone.audioCtx.state === 'suspended') phone.audioCtx.resume().catch(() => {});
    return phone.audioCtx;
  }

  // A browser that blocks audible autoplay (Firefox by default) keeps an
  // AudioContext suspended, its meters at -Infinity and the ringer silent,
  // until resume() is called from the user's input, even when the context
  // was created from it. So besides resuming before each use, the context is
  // created or resumed on every pointerdown and keydown until it runs.
  function unlockAudio() {
    if (ensureAudioContext().state !== 'running') return;
    window.removeEventListener('pointerdown', unlockAudio, true);
    window.removeEventListener('keydown', unlockAudio, true);
  }
  window.addEventListener('pointerdown', unlockAudio, true);
  window.addEventListener('keydown', unlockAudio, true);

  // newMeter measures what is connected to its AnalyserNode (m.an): the
  // level in dBFS and the dominant frequency, every METER_INTERVAL_MS,
  // shown in meterEl and dbEl when given; onMeasure(m) follows each
  // measurement. The analyser is not connected to the output: <audio>
  // elements play the remote streams.
  function newMeter(meterEl, dbEl, onMeasure) {
    const ctx = ensureAudioContext();
    const an = ctx.createAnalyser();
    an.fftSize = 4096;
    an.smoothingTimeConstant = 0.2;
    const m = {
      an,
      src: null, // the source the meter owns, if any
      time: new Float32Array(an.fftSize),
      freq: new Float32Array(an.frequencyBinCount),
      db: -Infinity,
      peakHz: 0,
      timer: 0,
      meterEl,
      dbEl,
      onMeasure,
    };
    m.timer = setInterval(() => measure(m), METER_INTERVAL_MS);
    return m;
  }

  function measure(m) {
    m.an.getFloatTimeDomainData(m.time);
    let sum = 0;
    for (const v of m.time) sum += v * v;
    const rms = Math.sqrt(sum / m.time.length);
    m.db = rms > 0 ? 20 * Math.log10(rms) : -Infinity;
    m.an.getFloatFrequencyData(m.freq);
    let best = 1;
    for (let i = 2; i < m.freq.length; i++) if (m.freq[i] > m.freq[best]) best = i;
    m.peakHz = (best * m.an.context.sampleRate) / m.an.fftSize;
    showLevel(m);
    if (m.onMeasure) m.onMeasure(m);
  }

  // levelAt is the meter's last spectrum level at hz, in dB.
  function levelAt(m, hz) {
    const bin = Math.round((hz * m.an.fftSize) / m.an.context.sampleRate);
    const v = m.freq[bin];
    return Number.isFinite(v) ? v : -1000;
  }

  // showLevel puts a meter's reading on the page: the bar clamped to
  // METER_FLOOR_DB..0, the figure in dBFS, "silent" below the floor, and
  // "Muted" on a muted microphone.
  function showLevel(m) {
    const muted = m.muted ? m.muted() : false;
    const db = muted || !Number.isFinite(m.db) ? -Infinity : Math.min(0, m.db);
    if (m.meterEl) m.meterEl.value = Math.max(METER_FLOOR_DB, db);
    if (m.dbEl) {
      m.dbEl.textContent = muted ? 'Muted' : db < METER_FLOOR_DB ? 'silent' : Math.round(db) + ' dB';
      m.dbEl.classList.toggle('muted-mic', muted);
    }
  }

  function closeMeter(m) {
    clearInterval(m.timer);
    if (m.src) m.src.disconnect();
    m.db = -Infinity;
    showLevel(m);
  }

  // attachMeter measures stream (or, without one, what is connected to
  // its analyser later) on the page's meter `which` (#which-meter,
  // #which-db).
  function attachMeter(which, stream) {
    detachMeter(which);
    const m = newMeter($(which + '-meter'), $(which + '-db'));
    if (which === 'mic') m.muted = () => !!phone.call && phone.call.muted;
    if (which === 'room-mic') m.muted = () => !!phone.room && phone.room.muted;
    if (stream) {
      m.src = m.an.context.createMediaStreamSource(stream);
      m.src.connect(m.an);
    }
    phone.meters[which] = m;
    return m;
  }

  function detachMeter(which) {
    const m = phone.meters[which];
    if (!m) return;
    closeMeter(m);
    phone.meters[which] = null;
  }

  function detachMeters() {
    detachMeter('mic');
    detachMeter('remote');
  }

  // A soft two-tone ring while a call is incoming (only where the browser
  // lets audio start; a ringing call is also shown on the page).
  let ringer = null;
  function startRinger() {
    if (ringer || !phone.audioCtx || phone.audioCtx.state !== 'running') return;
    const ctx = phone.audioCtx;
    const gain = ctx.createGain();
    gain.gain.value = 0;
    gain.connect(ctx.destination);
    const osc = [440, 480].map((f) => {
      const o = ctx.createOscillator();
      o.frequency.value = f;
      o.connect(gain);
      o.start();
      return o;
    });
    let on = false;
    const timer = setInterval(() => {
      on = !on;
      gain.gain.setTargetAtTime(on ? 0.08 : 0, ctx.currentTime, 0.01);
    }, 1000);
    ringer = { gain, osc, timer };
  }

  function stopRinger() {
    if (!ringer) return;
    clearInterval(ringer.timer);
    ringer.osc.forEach((o) => o.stop());
    ringer.gain.disconnect();
    ringer = null;
  }

  // --------------------------------------------------------------------- UI

  // A call state's word on the pill and sentence on the state line.
  const CALL_WORDS = {
    dialing: ['calling', (who) => 'Calling ' + who + '…'],
    waiting: ['ringing', (who) => 'Ringing ' + who + '…'],
    ringing: ['incoming', (who) => who + ' is calling…'],
    connecting: ['connecting', (who) => 'Connecting to ' + who + '…'],
    connected: ['connected', (who) => 'In a call with ' + who],
    reconnecting: ['reconnecting', (who) => 'Connection to ' + who + ' interrupted: reconnecting…'],
  };
  const ROOM_WORDS = { joining: 'joining', joined: 'joined', reconnecting: 'reconnecting' };
  const MEMBER_WORDS = { connecting: 'connecting', connected: 'connected', reconnecting: 'reconnecting', failed: 'could not connect' };

  let clock = 0;
  let wasLive = false; // a call or room was on screen at the last render

  // render makes the page show the phone's state; it also moves the focus
  // where the next action is: Answer on an incoming call, Hang up (or
  // Cancel) once a call is on screen and again when it connects, Leave in
  // a room, the call field when the call or room is over and its controls
  // are gone.
  function render() {
    const c = phone.call;
    const r = phone.room;
    const ringing = !!c && !c.outgoing && c.state === 'ringing';
    const who = c ? (c.displayName && c.displayName !== c.peer ? c.displayName + ' (' + c.peer + ')' : c.peer) : '';
    $('incoming').hidden = !ringing;
    if (ringing) $('incoming-from').textContent = who;
    $('call').hidden = !c || ringing;
    $('dial-button').disabled = !!c || !!r || !phone.wsUp;
    $('dial-user').disabled = !!c || !!r;
    if (c && !ringing) {
      const words = CALL_WORDS[c.state] || [c.state];
      $('call-peer').textContent = who;
      $('call-state').textContent = words[0];
      $('call-state').className = 'pill ' + c.state;
      $('mute').textContent = c.muted ? 'Unmute' : 'Mute';
      $('mute').setAttribute('aria-pressed', String(c.muted));
      $('mute').disabled = !c.mic;
      const unanswered = c.outgoing && (c.state === 'dialing' || c.state === 'waiting');
      $('hangup').textContent = unanswered ? 'Cancel' : 'Hang up';
    }
    const open = openChannels().length > 0;
    $('text-input').disabled = !open;
    $('text-send').disabled = !open;
    // The chat and the quality panel come with a connection; a call that
    // rings has neither yet.
    $('chat').hidden = !((c && c.connectedAt) || r || $('chat-log').children.length);
    $('quality').hidden = !c || !c.history.length;
    clearInterval(clock);
    if (c && c.connectedAt) {
      const tick = () => {
        $('call-timer').textContent = fmtDuration(performance.now() - c.connectedAt);
      };
      tick();
      clock = setInterval(tick, 1000);
    } else {
      $('call-timer').textContent = '';
    }
    if (!c) {
      renderStats({});
      drawGraph([]);
    }
    renderRoom();
    renderStateLine();

    if (c && ringing && !c.focusedAnswer) {
      c.focusedAnswer = true;
      $('answer').focus();
    }
    if (c && !ringing && !c.focusedPanel) {
      c.focusedPanel = true;
      $('hangup').focus();
    }
    if (c && c.state === 'connected' && !c.focusedConnected) {
      c.focusedConnected = true;
      if (document.activeElement !== $('text-input')) $('hangup').focus();
    }
    if (r && !r.focused) {
      r.focused = true;
      $('room-leave').focus();
    }
    const live = !!c || !!r;
    const a = document.activeElement;
    if (wasLive && !live && (!a || a === document.body || a.closest('[hidden]'))) $('dial-user').focus();
    wasLive = live;
  }

  // renderStateLine says what is going on in one sentence: the live call
  // or room, else the signaling connection when it is down, else how the
  // last call or room ended (phone.notice).
  function renderStateLine() {
    const c = phone.call;
    const r = phone.room;
    let text = '';
    let bad = false;
    if (c) {
      const who = c.displayName && c.displayName !== c.peer ? c.displayName : c.peer;
      const words = CALL_WORDS[c.state];
      text = words ? words[1](who) : '';
    } else if (r) {
      const others = r.members.size;
      if (r.state === 'joining') text = 'Joining room ' + r.name + '…';
      else if (r.state === 'reconnecting') text = 'Room ' + r.name + ': reconnecting to the server…';
      else text = 'In room ' + r.name + (others ? ' with ' + others + (others === 1 ? ' other' : ' others') : ', alone so far');
    } else if (!phone.wsUp && !phone.stopped && $('conn').dataset.state !== 'offline') {
      text = 'Reconnecting to the server… Calling is unavailable until then.';
      bad = true;
    } else if (phone.notice) {
      text = phone.notice.text;
      bad = phone.notice.bad;
    }
    const el = $('state-line');
    if (el.textContent !== text) el.textContent = text;
    el.classList.toggle('bad', bad);
  }

  function renderRoom() {
    const r = phone.room;
    $('room').hidden = !r;
    $('room-name').disabled = !!r || !!phone.call;
    $('room-join').disabled = !!r || !!phone.call || !phone.wsUp;
    $('room-leave').hidden = !r;
    if (!r) {
      $('room-members').replaceChildren();
      return;
    }
    $('room-title').textContent = r.name;
    $('room-state').textContent = ROOM_WORDS[r.state] || r.state;
    $('room-state').className = 'pill ' + r.state;
    $('room-mute').textContent = r.muted ? 'Unmute' : 'Mute';
    $('room-mute').setAttribute('aria-pressed', String(r.muted));
    const items = [...r.members.values()]
      .sort((a, b) => a.session - b.session)
      .map((mb) => {
        const li = document.createElement('li');
        li.dataset.user = mb.user;
        li.className = mb.talking ? 'talking' : '';
        const name = mb.displayName && mb.displayName !== mb.user ? mb.displayName + ' (' + mb.user + ')' : mb.user;
        li.textContent = name + ': ' + (MEMBER_WORDS[mb.state] || mb.state) + (mb.muted ? ', muted' : '') + (mb.talking ? ', talking' : '');
        return li;
      });
    $('room-members').replaceChildren(...items);
  }

  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    ensureAudioContext();
    $('login-error').hidden = true;
    login($('login-user').value.trim(), $('login-token').value.trim()).catch((err) => {
      $('login-error').textContent = err.message;
      $('login-error').hidden = false;
    });
  });
  $('logout').addEventListener('click', logout);
  $('dial-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const peer = $('dial-user').value.trim();
    if (peer) dial(peer);
  });
  $('answer').addEventListener('click', answer);
  $('decline').addEventListener('click', decline);
  $('hangup').addEventListener('click', hangup);
  $('mute').addEventListener('click', () => setMuted(!(phone.call && phone.call.muted)));
  $('room-form').addEventListener('submit', (e) => {
    e.preventDefault();
    joinRoom($('room-name').value.trim());
  });
  $('room-leave').addEventListener('click', leaveRoom);
  $('room-mute').addEventListener('click', () => setRoomMuted(!(phone.room && phone.room.muted)));
  $('text-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (sendText($('text-input').value)) $('text-input').value = '';
  });
  $('details').addEventListener('toggle', () => {
    if ($('details').open) $('log').scrollTop = $('log').scrollHeight;
  });
  window.addEventListener('resize', () => drawGraph(phone.call ? phone.call.history : []));
  probeTokenEndpoint();
  window.addEventListener('beforeunload', () => {
    if (phone.call) endCall('hangup', true);
    if (phone.room) endRoom('left', true);
  });

  // A read-mostly view for debugging from the console and for tests.
  window.dialtone = {
    phone,
    state: () => (phone.call ? phone.call.state : 'idle'),
    call: () => phone.call,
    lastCall: () => phone.lastCall,
    stats: () => (phone.call ? phone.call.stats : {}),
    levels: () => {
      const v = (m) => (m ? { db: m.db, peakHz: m.peakHz } : null);
      const members = {};
      if (phone.room) for (const mb of phone.room.members.values()) members[mb.user] = v(mb.meter);
      return { mic: v(phone.meters.mic), remote: v(phone.meters.remote), roomMic: v(phone.meters['room-mic']), room: v(phone.meters.room), members };
    },
    // levelAt(which, hz): meter `which`'s (mic, remote, room-mic, room)
    // last spectrum level at hz, in dB.
    levelAt: (which, hz) => (phone.meters[which] ? levelAt(phone.meters[which], hz) : null),
    room: () => {
      const r = phone.room;
      if (!r) return null;
      const members = [...r.members.values()]
        .sort((a, b) => a.session - b.session)
        .map((mb) => ({ user: mb.user, displayName: mb.displayName, muted: mb.muted, session: mb.session, state: mb.state, talking: mb.talking }));
      return { name: r.name, state: r.state, session: r.roster.session, muted: r.muted, members };
    },
    lastRoom: () => phone.lastRoom,
    // failLink(user) gives up on the room link with user as if its ICE
    // restarts had not brought it back.
    failLink: (user) => {
      const mb = phone.room && phone.room.members.get(user);
      if (!mb || !mb.link) return false;
      memberFailed(mb, 'given up by hand');
      return true;
    },
    texts: () => phone.texts.slice(),
    sendText,
  };
})();
