# Fetches the health URL on the host (ENV DEPLOYER_HEALTH_URL, so a ${VAR} in health.url never shows in
# `ps`) with a timeout of ARGV[0] seconds; prints the status code on the first line, then at most 4 KiB
# of body. A failure to connect prints 000 and the error. healthCheckCommand (puma-commands.ts) runs it.
require "net/http"; require "uri"
uri = URI(ENV.fetch("DEPLOYER_HEALTH_URL")); t = Float(ARGV[0])
begin
  res = Net::HTTP.start(uri.host, uri.port, use_ssl: uri.scheme == "https", open_timeout: t, read_timeout: t) { |h| h.request(Net::HTTP::Get.new(uri)) }
  puts res.code; print res.body.to_s[0, 4096]
rescue => e
  puts "000"; print "#{e.class}: #{e.message}"
end
