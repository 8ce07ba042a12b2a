--[==[
EmotionTap escalation for FreeSWITCH (mod_lua + mod_curl). Copy to scripts/ (e.g.
/usr/share/freeswitch/scripts/ or /usr/local/freeswitch/scripts/).

Two ways to run it (see emotiontap_dialplan.xml):

  luarun emotiontap_watch.lua <uuid>
      Watcher, in its own thread (luarun returns at once; there is no session object here).
      Every POLL_MS it asks EmotionTap GET /v1/calls/<call_id>?format=text&field=escalate; on
      `1` it runs `uuid_transfer <uuid> <emotiontap_escalate_to>`, which takes the caller out of
      a bridge too (the agent's B leg then hangs up). It stops when the channel is gone, after
      the transfer, or after MAX_HOURS.

  <action application="lua" data="emotiontap_watch.lua check"/>
      One question, in the call's own thread: transfers when the answer is `1`, otherwise
      returns and the dialplan goes on.

Channel variables it reads:
  emotiontap_call_id      the id EmotionTap knows the call by (default: sip_call_id, then the uuid)
  emotiontap_escalate_to  "<extension> [<dialplan> [<context>]]" (default: emotiontap_supervisor XML default)

The answer is `1` or `0`; a call without active legs answers 404 with a JSON body, and an
unreachable EmotionTap gives an empty or error string: all of these count as "not escalated".
mod_curl's API takes no request headers in every FreeSWITCH version, so keep EmotionTap's control
API on loopback without auth_token for this script (see ../README.md, security).
]==]

local EMOTIONTAP_URL = "http://127.0.0.1:8088"
local POLL_MS = 3000           -- how often the watcher asks; escalation needs 40 s of upset speech anyway
local MAX_HOURS = 4            -- safety stop for a watcher whose channel never reports gone
local DEFAULT_ESCALATE_TO = "emotiontap_supervisor XML default"

local api = freeswitch.API()

local function log(level, msg)
	freeswitch.consoleLog(level, "[emotiontap] " .. msg .. "\n")
end

local function trim(s)
	return (s or ""):gsub("^%s+", ""):gsub("%s+$", "")
end

-- Percent-encodes only what cannot appear in a URL path segment; Call-IDs made of letters,
-- digits and - . _ ~ @ : stay as they are (EmotionTap compares call ids literally).
local function path_escape(s)
	return (s:gsub("[^%w%-%._~!%$&'%(%)%*%+,;=:@]", function(c)
		return string.format("%%%02X", string.byte(c))
	end))
end

local function state_url(call_id)
	return EMOTIONTAP_URL .. "/v1/calls/" .. path_escape(call_id) .. "?format=text&field=escalate"
end

-- mod_curl's API prints the response body: "1", "0", a JSON error, or nothing.
local function escalated(call_id)
	local body = trim(api:execute("curl", state_url(call_id)))
	return body == "1", body
end

-- A channel variable through the API (watcher mode has no session); "" when unset.
local function getvar(uuid, name)
	local v = trim(api:executeString("uuid_getvar " .. uuid .. " " .. name))
	if v == "_undef_" or v:find("^%-ERR") then return "" end
	return v
end

local mode = argv[1] or ""

if mode == "check" then
	-- In-call mode: `session` is the channel running the dialplan.
	if not session or not session:ready() then return end
	local call_id = session:getVariable("emotiontap_call_id") or session:getVariable("sip_call_id")
		or session:get_uuid()
	local yes, body = escalated(call_id)
	if yes then
		local dest = session:getVariable("emotiontap_escalate_to") or DEFAULT_ESCALATE_TO
		local ext, dialplan, context = dest:match("^(%S+)%s*(%S*)%s*(%S*)$")
		log("NOTICE", call_id .. " escalated: transferring to " .. dest)
		session:transfer(ext, dialplan ~= "" and dialplan or "XML", context ~= "" and context or "default")
	else
		log("DEBUG", call_id .. " not escalated (" .. (body ~= "" and body or "no answer") .. ")")
	end
	return
end

-- Watcher mode: argv[1] is the channel uuid.
local uuid = mode
if uuid == "" then
	log("ERR", "usage: luarun emotiontap_watch.lua <uuid> | lua emotiontap_watch.lua check")
	return
end

local call_id = getvar(uuid, "emotiontap_call_id")
if call_id == "" then call_id = getvar(uuid, "sip_call_id") end
if call_id == "" then call_id = uuid end
local dest = getvar(uuid, "emotiontap_escalate_to")
if dest == "" then dest = DEFAULT_ESCALATE_TO end

log("INFO", "watching " .. uuid .. " as call_id " .. call_id)
local deadline = os.time() + MAX_HOURS * 3600
while os.time() < deadline do
	freeswitch.msleep(POLL_MS)      -- sleeps this thread only, no busy loop
	if trim(api:executeString("uuid_exists " .. uuid)) ~= "true" then
		log("INFO", uuid .. " is gone: watcher done")
		return
	end
	local yes = escalated(call_id)
	if yes then
		api:executeString("uuid_setvar " .. uuid .. " emotiontap_escalated true")
		local result = trim(api:executeString("uuid_transfer " .. uuid .. " " .. dest))
		log("NOTICE", call_id .. " escalated: uuid_transfer " .. uuid .. " " .. dest .. " -> " .. result)
		return
	end
end
log("WARNING", uuid .. ": watcher stopped after " .. MAX_HOURS .. " h")
