-- Argo CD health of a coffer.dev ObjectStore, Bucket or AccessKey, from the conditions the
-- operator writes: Degraded=True is Degraded; Ready=True is Healthy; anything else
-- (no status yet, a generation the operator has not observed, Ready=False) is Progressing.
local hs = {}
local generation = obj.metadata and obj.metadata.generation
local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator"
  return hs
end
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
local ready = nil
local degraded = nil
for _, c in ipairs(status.conditions) do
  -- A condition computed from an older generation says nothing about this one.
  local current = generation == nil or c.observedGeneration == nil or c.observedGeneration >= generation
  if current and c.type == "Ready" then ready = c end
  if current and c.type == "Degraded" then degraded = c end
end
local function describe(c)
  local text = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded)
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end
hs.status = "Progressing"
if ready ~= nil then
  hs.message = describe(ready)
else
  hs.message = "Waiting for the operator"
end
return hs
