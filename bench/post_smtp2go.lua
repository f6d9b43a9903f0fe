-- wrk script: POST realistic SMTP2GO form bodies (providers.md 1.6), each one different:
-- a fresh 32-hex `id`, email_id, rcpt and time per request, so nothing is a duplicate.
-- Mix: 5 % hard bounces, 10 % soft bounces, 10 % opens, the rest deliveries.
-- Arguments (after --): <nonce: integer> <secret, or - for none>
-- At the end prints one line `BENCH_JSON {...}` that the harness reads.

counter = 0
nonce = 0
headers = {}

local COMMON = "&sendtime=2026-05-04T10%%3A14%%3A58.412233%%2B00%%3A00"
  .. "&sender=bounces%%40mail.example.com&from=Example+App+%%3Cnoreply%%40example.com%%3E"
  .. "&from_address=noreply%%40example.com&from_name=Example+App&rcpt=%s"
  .. "&auth=api-1A2B3C4D5E6F"

local HEADERS = "&Message-Id=%%3C%s%%40example.com%%3E&message-id=%%3C%s%%40example.com%%3E"
  .. "&Subject=Your+receipt&subject=Your+receipt"

local DELIVERED = "event=delivered&id=%s&email_id=%s&time=%s" .. COMMON
  .. "&host=mx.example.com+%%5B192.0.2.44%%5D&message=250+2.0.0+Ok%%3A+queued+as+4XyZ1"
  .. "&context=Unavailable" .. HEADERS

local HARD = "event=bounce&bounce=hard&id=%s&email_id=%s&time=%s" .. COMMON
  .. "&host=mx1.example.org+%%5B198.51.100.25%%5D"
  .. "&message=550+5.1.1+%%3C%s%%3E%%3A+Recipient+address+rejected%%3A+User+unknown"
  .. "&context=RCPT+TO%%3A%%3C%s%%3E" .. HEADERS

local SOFT = "event=bounce&bounce=soft&id=%s&email_id=%s&time=%s" .. COMMON
  .. "&host=mx.example.net+%%5B203.0.113.7%%5D&message=452+4.2.2+Mailbox+full"
  .. "&context=DATA%%3A+452+4.2.2+Mailbox+full" .. HEADERS

local OPEN = "event=open&id=%s&email_id=%s&time=%s" .. COMMON
  .. "&srchost=198.51.100.77&read-secs=5&client=Thunderbird&client-device=desktop"
  .. "&client-os=Linux&geoip-continent=Europe&geoip-country=DE&geoip-city=Berlin"
  .. "&user-agent=Mozilla%%2F5.0+%%28X11%%3B+Linux+x86_64%%29" .. HEADERS

function setup(thread)
  thread_index = (thread_index or 0) + 1
  thread:set("tid", thread_index)
end

function init(args)
  nonce = tonumber(args[1] or "0") % 4294967296
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  headers["User-Agent"] = "SMTP2GO-Webhook-Bench"
  if args[2] and args[2] ~= "-" then
    headers["Authorization"] = "Bearer " .. args[2]
  end
end

function request()
  counter = counter + 1
  local n = counter
  local id = string.format("%08x%08x%08x%08x", tid, nonce, math.floor(n / 4294967296), n % 4294967296)
  local email_id = string.format("1w%d%x-Bench%05d-%04x", tid, nonce % 65536, n % 100000, n % 65536)
  local rcpt = string.format("user%06d%%40example%d.org", (n * 7919 + tid * 104729) % 100000, n % 7)
  local secs = n % 86400
  local time = string.format("2026-05-04T%02d%%3A%02d%%3A%02dZ",
    math.floor(secs / 3600), math.floor(secs / 60) % 60, secs % 60)
  local mid = string.format("%s.%d", id, tid)
  local k = n % 20
  local body
  if k == 0 then
    body = string.format(HARD, id, email_id, time, rcpt, rcpt, rcpt, mid, mid)
  elseif k <= 2 then
    body = string.format(SOFT, id, email_id, time, rcpt, mid, mid)
  elseif k <= 4 then
    body = string.format(OPEN, id, email_id, time, rcpt, mid, mid)
  else
    body = string.format(DELIVERED, id, email_id, time, rcpt, mid, mid)
  end
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "non2xx": %d, '
    .. '"connect": %d, "read": %d, "write": %d, "timeout": %d, "p50_us": %.0f, '
    .. '"p90_us": %.0f, "p99_us": %.0f, "max_us": %.0f, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read,
    e.write, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
