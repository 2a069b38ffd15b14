// dialtone web phone: plain JavaScript, no build step, nothing loaded from
// elsewhere. It speaks dialtone's signaling protocol (signaling/PROTOCOL.md)
// over a WebSocket to the server that served it, and WebRTC with the same
// rules as the Go call package: the caller is impolite and the callee polite
// (W3C perfect negotiation), trickle ICE, a pre-negotiated data channel
// "text" (id 0), one call at a time (a second invite is answered `busy`).
'use strict';

(() => {
  const RING_TIMEOUT_MS = 40000; // caller: no answer → cancel {reason: no-answer}
  const RING_GUARD_MS = 50000; // callee: stop ringing if the cancel never comes
  const CONNECT_TIMEOUT_MS = 15000; // accept → media connected
  const MAX_ICE_RESTARTS = 2;
  const FIRST_OFFER_WAIT_MS = 2000; // callee: wait this long for the caller's offer
  const STATS_INTERVAL_MS = 1000;
  const METER_INTERVAL_MS = 100;

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
    relayTTL: 0, // validity of iceServers' TURN credentials, seconds (0: none)
    relayAt: 0, // when iceServers arrived (Date.now())
    call: null, // the live call, or null
    lastCall: null, // summary of the last ended call
    texts: [], // received data-channel texts
    events: [], // page log, newest last
    audioCtx: null,
    meters: { mic: null, remote: null },
  };

  // ---------------------------------------------------------------- logging

  function log(msg, cls) {
    const t = new Date().toISOString().slice(11, 23);
    phone.events.push(t + ' ' + msg);
    if (phone.events.length > 500) phone.events.shift();
    const li = document.createElement('li');
    li.textContent = t + ' ' + msg;
    if (cls) li.className = cls;
    const list = $('messages');
    list.appendChild(li);
    while (list.children.length > 200) list.removeChild(list.firstChild);
    list.scrollTop = list.scrollHeight;
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
        $('token-row').hidden = false;
        throw new Error('this server needs a token');
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
    connect();
  }

  async function freshToken() {
    const r = await fetch('/token?user=' + encodeURIComponent(phone.user), { cache: 'no-store' });
    if (!r.ok) throw new Error('no token (' + r.status + ')');
    phone.token = (await r.json()).token;
  }

  function logout() {
    phone.stopped = true;
    if (phone.call) endCall('hangup', true);
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
      if (phone.stopped) return;
      if (e.code === 4001) {
        log('logged in elsewhere: this page stays offline', 'error');
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

  function setConn(s) {
    const el = $('conn');
    el.textContent = s;
    el.className = 'pill ' + s;
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
      setConn('up');
      log('ready as ' + d.user + (phone.iceServers.length ? ' (' + phone.iceServers.length + ' ICE servers)' : ''));
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
        if (d.rejected === 'invite' && c.state === 'dialing') endCall('error', false);
        break;
    }
  }

  function onInvite(m) {
    if (phone.call) {
      send('busy', m.from, m.call);
      log('busy: ' + m.from + ' called while in a call');
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
      polite: !outgoing, // the callee is polite, as on the Go side
      state: 'idle',
      displayName: '',
      pc: null,
      dc: null,
      mic: null,
      remote: null,
      early: [],
      chain: Promise.resolve(),
      makingOffer: false,
      ignoreOffer: false,
      settingRemoteAnswer: false,
      iceRestarts: 0,
      ringTimer: 0,
      connectTimer: 0,
      offerTimer: 0,
      waitForOffer: false,
      statsTimer: 0,
      started: performance.now(),
      connectedAt: 0,
      stats: {},
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
    if (phone.call) return;
    if (!phone.wsUp) {
      log('cannot call: signaling is down', 'error');
      return;
    }
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
    clearTimeout(c.offerTimer);
    clearInterval(c.statsTimer);
    stopRinger();
    if (c.pc) c.pc.close();
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
    $('last-call').textContent = 'Last call with ' + c.peer + ' ended: ' + reason + (detail ? ' (' + detail + ')' : '');
    log('call ended: ' + reason + (detail ? ' (' + detail + ')' : ''));
    render();
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

  // startMedia creates the PeerConnection: our microphone track, the
  // pre-negotiated "text" channel, and the perfect-negotiation handlers.
  function startMedia(c) {
    const pc = new RTCPeerConnection({ iceServers: phone.iceServers });
    c.pc = pc;
    for (const t of c.mic.getAudioTracks()) pc.addTrack(t, c.mic);
    c.dc = pc.createDataChannel('text', { negotiated: true, id: 0 });
    c.dc.onopen = () => render();
    c.dc.onclose = () => render();
    c.dc.onmessage = (e) => {
      if (typeof e.data !== 'string') return;
      phone.texts.push(e.data);
      log(c.peer + ': ' + e.data, 'text');
    };

    pc.ontrack = (e) => {
      if (e.track.kind !== 'audio') return;
      const stream = e.streams[0] || new MediaStream([e.track]);
      c.remote = stream;
      const el = $('remote-audio');
      el.srcObject = stream;
      el.play().catch((err) => log('audio playback: ' + err.message));
      attachMeter('remote', stream);
    };

    pc.onicecandidate = ({ candidate }) => {
      if (candidate && candidate.candidate) {
        log('local candidate ' + candidate.address + ':' + candidate.port + ' ' + candidate.protocol + ' ' + candidate.type);
        send('signal', c.peer, c.id, { candidate: candidate.toJSON() });
      }
    };

    // The callee lets the caller make the first offer (both the Go phone
    // and this page offer as soon as they see `accept`): a glare on the very
    // first offer is legal, but Chrome then sometimes never gathers
    // candidates for its answer. Should no offer come, offer after all.
    c.waitForOffer = !c.outgoing;
    if (c.waitForOffer) {
      c.offerTimer = setTimeout(() => {
        if (phone.call !== c || !c.waitForOffer) return;
        c.waitForOffer = false;
        pc.onnegotiationneeded();
      }, FIRST_OFFER_WAIT_MS);
    }
    pc.onnegotiationneeded = async () => {
      if (c.waitForOffer) return;
      try {
        c.makingOffer = true;
        await pc.setLocalDescription();
        if (phone.call !== c) return;
        log('sending ' + pc.localDescription.type);
        send('signal', c.peer, c.id, { description: pc.localDescription.toJSON() });
      } catch (err) {
        log('offer failed: ' + err.message, 'error');
      } finally {
        c.makingOffer = false;
      }
    };

    pc.oniceconnectionstatechange = () => log('ICE ' + pc.iceConnectionState);
    pc.onicegatheringstatechange = () => log('ICE gathering ' + pc.iceGatheringState);
    pc.onicecandidateerror = (e) => log('ICE candidate error ' + e.errorCode + ' ' + e.errorText);
    pc.onsignalingstatechange = () => log('signaling state ' + pc.signalingState);
    pc.onconnectionstatechange = () => {
      if (phone.call !== c) return;
      switch (pc.connectionState) {
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
        case 'failed':
          if (c.iceRestarts < MAX_ICE_RESTARTS) {
            c.iceRestarts++;
            setCallState('reconnecting');
            pc.restartIce();
          } else {
            endCall('ice-failed', true);
          }
          break;
      }
    };

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

  // Signals are applied one at a time, in arrival order.
  function queueSignal(c, d) {
    c.chain = c.chain.then(() => onSignal(c, d));
  }

  // onSignal is the W3C perfect negotiation pattern.
  async function onSignal(c, d) {
    const pc = c.pc;
    if (phone.call !== c || pc.signalingState === 'closed') return;
    try {
      if (d.description) {
        const desc = d.description;
        log('received ' + desc.type);
        if (desc.type === 'offer') {
          c.waitForOffer = false;
          clearTimeout(c.offerTimer);
        }
        const readyForOffer = !c.makingOffer && (pc.signalingState === 'stable' || c.settingRemoteAnswer);
        const collision = desc.type === 'offer' && !readyForOffer;
        c.ignoreOffer = !c.polite && collision;
        if (c.ignoreOffer) {
          log('colliding offer ignored (impolite)');
          return;
        }
        c.settingRemoteAnswer = desc.type === 'answer';
        await pc.setRemoteDescription(desc); // rolls back our own offer when polite
        c.settingRemoteAnswer = false;
        if (desc.type === 'offer') {
          await pc.setLocalDescription();
          log('sending answer');
          send('signal', c.peer, c.id, { description: pc.localDescription.toJSON() });
        }
      } else if (d.candidate) {
        log('remote candidate ' + String(d.candidate.candidate).split(' ').slice(4, 8).join(' '));
        try {
          await pc.addIceCandidate(d.candidate);
        } catch (err) {
          if (!c.ignoreOffer) log('candidate not applied: ' + err.message);
        }
      }
    } catch (err) {
      c.settingRemoteAnswer = false;
      log('signal not applied: ' + err.message, 'error');
    }
  }

  function setMuted(on) {
    const c = phone.call;
    if (!c || !c.mic) return;
    c.muted = on;
    c.mic.getAudioTracks().forEach((t) => (t.enabled = !on));
    render();
  }

  function sendText(text) {
    const c = phone.call;
    if (!c || !c.dc || c.dc.readyState !== 'open' || !text) return false;
    c.dc.send(text);
    log('me: ' + text, 'text');
    return true;
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
    c.stats = s;
    renderStats(s);
  }

  function fmtMs(sec) {
    return sec === undefined ? '–' : (sec * 1000).toFixed(1) + ' ms';
  }

  function renderStats(s) {
    $('stat-rtt').textContent = fmtMs(s.rtt);
    $('stat-jitter').textContent = fmtMs(s.jitter);
    $('stat-lost').textContent = s.packetsLost === undefined ? '–' : String(s.packetsLost);
    $('stat-packets').textContent = (s.packetsReceived ?? '–') + ' / ' + (s.packetsSent ?? '–');
    $('stat-level').textContent = s.audioLevel === undefined ? '–' : s.audioLevel.toFixed(3);
    $('stat-codec').textContent = s.codec || '–';
  }

  // ----------------------------------------------------------------- meters

  function ensureAudioContext() {
    if (!phone.audioCtx) phone.audioCtx = new AudioContext();
    if (phone.audioCtx.state === 'suspended') phone.audioCtx.resume().catch(() => {});
    return phone.audioCtx;
  }

  // attachMeter measures a stream with an AnalyserNode: its level in dBFS
  // and its dominant frequency. The analyser is not connected to the
  // output; the <audio> element plays the remote stream.
  function attachMeter(which, stream) {
    const ctx = ensureAudioContext();
    detachMeter(which);
    const src = ctx.createMediaStreamSource(stream);
    const an = ctx.createAnalyser();
    an.fftSize = 4096;
    an.smoothingTimeConstant = 0.2;
    src.connect(an);
    const m = {
      src,
      an,
      time: new Float32Array(an.fftSize),
      freq: new Float32Array(an.frequencyBinCount),
      db: -Infinity,
      peakHz: 0,
      timer: 0,
    };
    m.timer = setInterval(() => measure(which, m), METER_INTERVAL_MS);
    phone.meters[which] = m;
  }

  function measure(which, m) {
    m.an.getFloatTimeDomainData(m.time);
    let sum = 0;
    for (const v of m.time) sum += v * v;
    const rms = Math.sqrt(sum / m.time.length);
    m.db = rms > 0 ? 20 * Math.log10(rms) : -Infinity;
    m.an.getFloatFrequencyData(m.freq);
    let best = 1;
    for (let i = 2; i < m.freq.length; i++) if (m.freq[i] > m.freq[best]) best = i;
    m.peakHz = (best * m.an.context.sampleRate) / m.an.fftSize;
    const meter = $(which + '-meter');
    meter.value = Math.max(-60, m.db);
    $(which + '-db').textContent = Number.isFinite(m.db) ? m.db.toFixed(0) + ' dB' : '–';
  }

  function detachMeter(which) {
    const m = phone.meters[which];
    if (!m) return;
    clearInterval(m.timer);
    m.src.disconnect();
    phone.meters[which] = null;
    $(which + '-meter').value = -60;
    $(which + '-db').textContent = '–';
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

  let clock = 0;
  function render() {
    const c = phone.call;
    const ringing = !!c && !c.outgoing && c.state === 'ringing';
    $('incoming').hidden = !ringing;
    if (ringing) $('incoming-from').textContent = c.displayName + (c.displayName !== c.peer ? ' (' + c.peer + ')' : '');
    $('call').hidden = !c || ringing;
    $('dial-button').disabled = !!c;
    $('dial-user').disabled = !!c;
    if (c && !ringing) {
      $('call-peer').textContent = c.peer;
      $('call-state').textContent = c.state;
      $('call-state').className = 'pill ' + c.state;
      $('mute').textContent = c.muted ? 'Unmute' : 'Mute';
      $('mute').setAttribute('aria-pressed', String(c.muted));
      const open = !!c.dc && c.dc.readyState === 'open';
      $('text-input').disabled = !open;
      $('text-send').disabled = !open;
    }
    clearInterval(clock);
    if (c && c.connectedAt) {
      const tick = () => {
        const s = Math.floor((performance.now() - c.connectedAt) / 1000);
        $('call-timer').textContent = Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
      };
      tick();
      clock = setInterval(tick, 1000);
    } else {
      $('call-timer').textContent = '';
    }
    if (!c) renderStats({});
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
    if (peer && peer !== phone.user) dial(peer);
  });
  $('answer').addEventListener('click', answer);
  $('decline').addEventListener('click', decline);
  $('hangup').addEventListener('click', hangup);
  $('mute').addEventListener('click', () => setMuted(!(phone.call && phone.call.muted)));
  $('text-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (sendText($('text-input').value)) $('text-input').value = '';
  });
  window.addEventListener('beforeunload', () => {
    if (phone.call) endCall('hangup', true);
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
      return { mic: v(phone.meters.mic), remote: v(phone.meters.remote) };
    },
    texts: () => phone.texts.slice(),
    sendText,
  };
})();
