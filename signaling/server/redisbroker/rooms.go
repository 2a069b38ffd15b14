package redisbroker

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/dialtone-dev/dialtone/signaling/server"
)

// Rooms on Redis, each change one script (atomic on the Redis side):
//
//   - <prefix>room:<room>: hash user → member JSON (server.RoomMember);
//   - <prefix>roomseq:<room>: the room's change counter;
//   - <prefix>inroom:<user>: the room the user is in.
//
// Every script first removes the members whose owner node's liveness key
// (<prefix>alive:<node>) is gone, and every script answers the same flat
// array: outcome, seq, other room, changed (0/1), the member concerned,
// the number of removed members, then "seq|member" for each, then the
// members. An empty room's keys are deleted.

// roomPrelude removes the dead nodes' members. KEYS[1] room hash, KEYS[2]
// seq; ARGV[1] room, ARGV[2] user, ARGV[3] liveness key prefix, ARGV[4]
// in-room key prefix.
const roomPrelude = `
local gone = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local ok, m = pcall(cjson.decode, all[i+1])
  if not ok or type(m.owner) ~= 'table' or redis.call('EXISTS', ARGV[3] .. tostring(m.owner.node)) == 0 then
    redis.call('HDEL', KEYS[1], all[i])
    if redis.call('GET', ARGV[4] .. all[i]) == ARGV[1] then redis.call('DEL', ARGV[4] .. all[i]) end
    local s = redis.call('INCR', KEYS[2])
    table.insert(gone, s .. '|' .. all[i+1])
  end
end
local function answer(outcome, other, changed, member)
  local out = {outcome, tostring(tonumber(redis.call('GET', KEYS[2]) or '0')), other, changed, member, tostring(#gone)}
  for _, g in ipairs(gone) do table.insert(out, g) end
  local vals = redis.call('HVALS', KEYS[1])
  for _, v in ipairs(vals) do table.insert(out, v) end
  if #vals == 0 then redis.call('DEL', KEYS[1], KEYS[2]) end
  return out
end
`

var (
	// ARGV[5] member JSON, ARGV[6] max members, ARGV[7] room key
	// prefix. A user's other room counts while it is a member there
	// through a live node.
	scriptRoomJoin = redis.NewScript(roomPrelude + `
local key = ARGV[4] .. ARGV[2]
local other = redis.call('GET', key)
if other and other ~= ARGV[1] then
  local o = redis.call('HGET', ARGV[7] .. other, ARGV[2])
  if o then
    local ok, om = pcall(cjson.decode, o)
    if ok and type(om.owner) == 'table' and redis.call('EXISTS', ARGV[3] .. tostring(om.owner.node)) == 1 then
      return answer('other', other, '0', ARGV[5])
    end
  end
end
local new = cjson.decode(ARGV[5])
local cur = redis.call('HGET', KEYS[1], ARGV[2])
if cur then
  local m = cjson.decode(cur)
  new.session = m.session
  local changed = '0'
  if (m.displayName or '') ~= (new.displayName or '') or (m.muted or false) ~= (new.muted or false) then
    redis.call('INCR', KEYS[2])
    changed = '1'
  end
  local v = cjson.encode(new)
  redis.call('HSET', KEYS[1], ARGV[2], v)
  redis.call('SET', key, ARGV[1])
  return answer('resumed', '', changed, v)
end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[6]) then return answer('full', '', '0', ARGV[5]) end
new.session = redis.call('INCR', KEYS[2])
local v = cjson.encode(new)
redis.call('HSET', KEYS[1], ARGV[2], v)
redis.call('SET', key, ARGV[1])
return answer('joined', '', '1', v)`)

	// ARGV[5] owner node ("" for any), ARGV[6] owner conn.
	scriptRoomLeave = redis.NewScript(roomPrelude + `
local cur = redis.call('HGET', KEYS[1], ARGV[2])
if not cur then return answer('not-member', '', '0', '') end
if ARGV[5] ~= '' then
  local m = cjson.decode(cur)
  if tostring(m.owner.node) ~= ARGV[5] or tostring(m.owner.conn) ~= ARGV[6] then return answer('not-member', '', '0', '') end
end
redis.call('HDEL', KEYS[1], ARGV[2])
local key = ARGV[4] .. ARGV[2]
if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
redis.call('INCR', KEYS[2])
return answer('left', '', '1', cur)`)

	// ARGV[5] "1" muted, "0" not.
	scriptRoomMute = redis.NewScript(roomPrelude + `
local cur = redis.call('HGET', KEYS[1], ARGV[2])
if not cur then return answer('not-member', '', '0', '') end
local m = cjson.decode(cur)
local muted = ARGV[5] == '1'
if (m.muted or false) == muted then return answer('updated', '', '0', cur) end
m.muted = muted
local v = cjson.encode(m)
redis.call('HSET', KEYS[1], ARGV[2], v)
redis.call('INCR', KEYS[2])
return answer('updated', '', '1', v)`)
)

func (b *Broker) roomPrefix() string { return b.cfg.Prefix + "room:" }

func (b *Broker) roomKeys(room string) []string {
	return []string{b.roomPrefix() + room, b.cfg.Prefix + "roomseq:" + room}
}

func (b *Broker) inRoomPrefix() string { return b.cfg.Prefix + "inroom:" }

// runRoom runs a room script and decodes its answer.
func (b *Broker) runRoom(ctx context.Context, s *redis.Script, room, user string, args ...any) (server.RoomResult, error) {
	argv := append([]any{room, user, b.alivePrefix(), b.inRoomPrefix()}, args...)
	v, err := s.Run(ctx, b.rdb, b.roomKeys(room), argv...).StringSlice()
	if err != nil {
		return server.RoomResult{}, err
	}
	return decodeRoomAnswer(v)
}

func decodeRoomAnswer(v []string) (server.RoomResult, error) {
	if len(v) < 6 {
		return server.RoomResult{}, fmt.Errorf("redisbroker: room answer of %d fields", len(v))
	}
	seq, err := strconv.ParseUint(v[1], 10, 64)
	if err != nil {
		return server.RoomResult{}, fmt.Errorf("redisbroker: room seq %q: %w", v[1], err)
	}
	res := server.RoomResult{Outcome: server.RoomOutcome(v[0]), Seq: seq, Other: v[2], Changed: v[3] == "1"}
	if v[4] != "" {
		if err := json.Unmarshal([]byte(v[4]), &res.Member); err != nil {
			return server.RoomResult{}, fmt.Errorf("redisbroker: room member: %w", err)
		}
	}
	n, err := strconv.Atoi(v[5])
	if err != nil || n < 0 || 6+n > len(v) {
		return server.RoomResult{}, fmt.Errorf("redisbroker: room answer: %d removed members of %d fields", n, len(v))
	}
	for _, g := range v[6 : 6+n] {
		var c server.RoomChange
		s, member, _ := strings.Cut(g, "|")
		if c.Seq, err = strconv.ParseUint(s, 10, 64); err != nil {
			return server.RoomResult{}, fmt.Errorf("redisbroker: removed member seq %q: %w", s, err)
		}
		// A member that does not decode was removed too; it is told
		// about with what is left of it.
		_ = json.Unmarshal([]byte(member), &c.Member)
		res.Gone = append(res.Gone, c)
	}
	for _, x := range v[6+n:] {
		var m server.RoomMember
		if err := json.Unmarshal([]byte(x), &m); err != nil {
			return server.RoomResult{}, fmt.Errorf("redisbroker: room member: %w", err)
		}
		res.Members = append(res.Members, m)
	}
	slices.SortFunc(res.Members, func(a, b server.RoomMember) int { return cmp.Compare(a.Session, b.Session) })
	return res, nil
}

// JoinRoom implements server.Broker.
func (b *Broker) JoinRoom(ctx context.Context, room string, m server.RoomMember, max int) (server.RoomResult, error) {
	m.Session = 0
	payload, err := json.Marshal(m)
	if err != nil {
		return server.RoomResult{}, err
	}
	return b.runRoom(ctx, scriptRoomJoin, room, m.User, payload, max, b.roomPrefix())
}

// LeaveRoom implements server.Broker.
func (b *Broker) LeaveRoom(ctx context.Context, room, user string, owner server.Presence) (server.RoomResult, error) {
	return b.runRoom(ctx, scriptRoomLeave, room, user, owner.Node, strconv.FormatUint(owner.Conn, 10))
}

// MuteRoom implements server.Broker.
func (b *Broker) MuteRoom(ctx context.Context, room, user string, muted bool) (server.RoomResult, error) {
	flag := "0"
	if muted {
		flag = "1"
	}
	return b.runRoom(ctx, scriptRoomMute, room, user, flag)
}
