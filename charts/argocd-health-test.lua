-- Runs charts/coffer/files/argocd-health.lua (the Argo CD health check) the way Argo CD
-- does — with the resource as the global `obj` — against each kind in each state.
-- Usage: lua5.4 charts/argocd-health-test.lua charts/coffer/files/argocd-health.lua
local script = assert(arg[1], "usage: argocd-health-test.lua HEALTH.lua")
local check = assert(loadfile(script))

local function cond(type_, status, reason, gen, message)
  return { type = type_, status = status, reason = reason, message = message or "", observedGeneration = gen }
end

local function resource(kind, generation, status)
  return { apiVersion = "coffer.dev/v1alpha1", kind = kind,
           metadata = { name = "x", namespace = "media", generation = generation }, status = status }
end

local cases = {
  { "no status yet", nil, "Progressing", "Waiting for the operator" },
  { "conditions not written", { observedGeneration = 1 }, "Progressing", "Waiting" },
  { "ready", { observedGeneration = 2, conditions = {
      cond("Ready", "True", "Ready", 2, "all good"), cond("Degraded", "False", "AsExpected", 2) } },
    "Healthy", "all good" },
  { "not ready yet", { observedGeneration = 2, conditions = {
      cond("Ready", "False", "ServersNotReady", 2, "1/4 servers ready"), cond("Degraded", "False", "AsExpected", 2) } },
    "Progressing", "ServersNotReady: 1/4 servers ready" },
  { "degraded", { observedGeneration = 2, conditions = {
      cond("Ready", "False", "QuorumLost", 2), cond("Degraded", "True", "QuorumLost", 2, "writes fail") } },
    "Degraded", "QuorumLost: writes fail" },
  { "spec changed, status older", { observedGeneration = 1, conditions = {
      cond("Ready", "True", "Ready", 1, "old news") } },
    "Progressing", "observe generation 2" },
  { "stale Ready condition", { observedGeneration = 2, conditions = {
      cond("Ready", "True", "Ready", 1, "old news"), cond("Degraded", "False", "AsExpected", 2) } },
    "Progressing", "Waiting for the operator" },
  { "stale Degraded condition", { observedGeneration = 2, conditions = {
      cond("Ready", "True", "Ready", 2, "fixed"), cond("Degraded", "True", "InvalidTopology", 1) } },
    "Healthy", "fixed" },
}

local failures = 0
local count = 0
for _, kind in ipairs({ "ObjectStore", "Bucket", "AccessKey" }) do
  for _, case in ipairs(cases) do
    local name, status, want, message = case[1], case[2], case[3], case[4]
    obj = resource(kind, 2, status)
    local hs = check()
    count = count + 1
    if hs.status ~= want or not string.find(hs.message or "", message, 1, true) then
      failures = failures + 1
      print(string.format("FAIL %s, %s: got %s %q, want %s containing %q",
        kind, name, tostring(hs.status), tostring(hs.message), want, message))
    end
  end
end
if failures > 0 then
  os.exit(1)
end
print(string.format("argocd health: %d cases passed", count))
