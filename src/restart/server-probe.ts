import { quote } from '../transport/quote.js'

/*
 * Reads what a host's running Puma really is, in one round trip: the master from its pidfile and
 * /proc, its workers, the control app's /stats, and how Puma itself reads each given config file. A
 * deploy must never assume these (docs/puma-restarts.md §5.1, §10): a pidfile can be stale, a
 * USR1 can silently become a hot restart, workers can run an old release while stats look perfect.
 *
 * The host side is a small POSIX sh preamble that hands over to Ruby, which a Puma host always has.
 * The control token travels on stdin, never on the command line, where `ps` would show it. Of the
 * master's environment only a few derived facts leave the host: the rest holds secrets.
 */

/** What the probe needs to know about the host. */
export interface ServerProbeOptions {
  /** The app's deploy_to; relative config dirs are resolved against it. */
  deployTo: string
  /** Absolute path of Puma's pidfile. */
  pidfile: string
  /** Puma's control app: `unix:///path` or `tcp://host:port`. Without it, no stats are read. */
  controlUrl?: string
  /** Configs to evaluate with Puma's own classes: a release dir and the config path relative to it. */
  configs: { dir: string; file: string }[]
  /**
   * The master seen before a restart. It is still the master (not a stale pid) while that pid lives with
   * the same start time, even when its proctitle or the pidfile say otherwise for a moment (a USR2).
   */
  expectMaster?: MasterIdentity
}

/** A process told apart from any later one with the same pid: exec keeps both, a new process changes the start time. */
export interface MasterIdentity {
  pid: number
  /** Field 22 of /proc/PID/stat (clock ticks after boot); null when it could not be read. */
  startTime: number | null
}

/** The few facts taken from the master's `/proc/PID/environ` (the environment it was exec'd with). */
export interface MasterEnvFacts {
  /** PWD: Puma's restart directory when `directory` is not set (§3.1). */
  pwd?: string
  /** WEB_CONCURRENCY: on Puma 5.x/6.x it turns preload on by default when > 1 (§1.3). */
  webConcurrency?: string
  /** PUMA_SKIP_SIGUSR2 is set: Puma 6.6+ then leaves USR2 to someone else (F29). */
  skipUsr2?: boolean
  /** BUNDLE_GEMFILE: a resolved release path here pins that release's gems (F8). */
  bundleGemfile?: string
}

/** The process the pidfile names. `running` is the one to trust: a live pid whose proctitle is Puma's. */
export interface MasterFacts {
  pidfile: string
  /** The pid in the pidfile; null when it is missing or holds no pid. */
  pid: number | null
  /** Why there is no pid: `missing`, `unreadable`, `no pid in it`. */
  pidfileError?: string
  /** A process with that pid exists and is not a zombie. */
  alive: boolean
  /** Its proctitle starts with `puma ` (a stale pidfile can name an unrelated process). */
  isPuma: boolean
  /** alive and isPuma. */
  running: boolean
  /** Start time of the process behind the pid (see MasterIdentity); absent when it is not alive. */
  startTime?: number
  /**
   * Alive, not showing Puma's proctitle, but its cmdline is empty or names puma: a master re-exec'ing
   * after USR2 looks like this for hundreds of milliseconds (longer on a busy machine or with a big
   * Gemfile). Only `expectMaster`'s identity makes it certainly ours.
   */
  settling: boolean
  /** The pidfile held no pid for a moment, and the pid came from `expectMaster` (still alive, same start time). */
  pidFromExpected?: boolean
  /** The proctitle, `puma 5.6.5 (tcp://0.0.0.0:3000) [app]`. */
  proctitle?: string
  /** Resolved cwd (`releases/N`, never the symlink). */
  cwd?: string
  /** The executable; ends in ` (deleted)` when it was replaced on disk. */
  exe?: string
  /** Puma's version, from the proctitle. */
  pumaVersion?: string
  /** The binds shown in the proctitle. */
  binds?: string[]
  /** The proctitle's `[tag]`. */
  tag?: string
  /** RUBY_VERSION of the master's executable, when that is a Ruby. */
  rubyVersion?: string
  /** Whether /proc/PID/environ could be read (same user or root). */
  environReadable: boolean
  env: MasterEnvFacts
}

/** A cluster worker of the master, as /proc shows it. */
export interface WorkerFacts {
  pid: number
  ppid: number
  /** The worker index from `puma: cluster worker N: MASTERPID [tag]`; null when not parseable. */
  index: number | null
  /** The master pid named in the proctitle. */
  masterPid: number | null
  tag?: string
  /** Resolved cwd: the release this worker's code came from. */
  cwd?: string
  cmdline: string
}

/** One entry of `worker_status` in Puma's cluster stats. */
export interface WorkerStatus {
  index: number | null
  /** Can be null briefly with fork_worker. */
  pid: number | null
  phase: number | null
  booted: boolean | null
  startedAt?: string
  lastCheckin?: string
  /** `{}` until the first check-in; then backlog, running, poolCapacity, maxThreads, requestsCount, ... */
  lastStatus: Record<string, number>
}

/** `/stats` from Puma's control app, with camelCase keys. */
export interface PumaStats {
  /** Cluster stats carry workers and phases; single mode reports only the server's thread pool. */
  mode: 'single' | 'cluster'
  /** Changes only on a hot restart or a start. */
  startedAt: string | null
  /** Cluster only: USR1 and refork increment it, USR2 resets it to 0. */
  phase: number | null
  /** Cluster only: worker handles right now (dips during a phased step), not the configured count. */
  workers: number | null
  /** Cluster only: includes old-phase workers. */
  bootedWorkers: number | null
  oldWorkers: number | null
  workerStatus: WorkerStatus[]
  /** Single mode only: backlog, running, poolCapacity, maxThreads, requestsCount. */
  pool?: Record<string, number>
  /** Puma 6.0+ only. */
  versions?: { puma: string; ruby?: { engine?: string; version?: string; patchlevel?: number } }
}

/** How Puma's own Configuration classes read one config file on the host. */
export interface PumaConfigFacts {
  dir: string
  file: string
  ok: boolean
  /** Why it could not be read: a syntax error, a missing file, an exception in the file. */
  error?: string
  /** Whose environment it was evaluated in: the master's (as the master did) or the probe's. */
  envSource: 'master' | 'probe'
  /** Puma::Const::PUMA_VERSION as loaded in that environment. */
  pumaVersion: string | null
  workers: number | null
  /** `preload_app!` as written in the file; null when the file does not set it. */
  preloadApp: boolean | null
  /** The preload Puma computes when the file does not set it (version-specific, §1.3). */
  defaultPreload: boolean | null
  pruneBundler: boolean | null
  /** `directory` as written (unresolved); null when not set. */
  directory: string | null
  binds: string[]
  pidfile: string | null
  controlUrl: string | null
  stateFile: string | null
  stdoutRedirect: string | null
  workerShutdownTimeout: number | null
  workerBootTimeout: number | null
  /** fork_worker's refork-after request count; null when fork_worker is off. */
  forkWorker: number | null
  /** Whether that Puma has `bin/puma-wild`, which prune_bundler needs; absent when Puma has no gem spec. */
  pumaWild?: boolean
  /**
   * The file sets `bind`, `port` or `ssl_bind`; false when `binds` is Puma's default (8.0: `tcp://[::]:9292`
   * where the host has IPv6). Absent from probes that predate it.
   */
  bindsInFile?: boolean
}

/** Everything one probe saw. */
export interface ServerProbe {
  master: MasterFacts
  workers: WorkerFacts[]
  /** null when no control URL was given or the stats could not be read. */
  stats: PumaStats | null
  /** Why the stats could not be read (`HTTP 403: Invalid auth token`, a missing socket, ...). */
  statsError: string | null
  configs: PumaConfigFacts[]
  /** realpath of `deploy_to/current`; null when it does not resolve. */
  currentPath: string | null
  /** TCP ports something listens on (IPv4 and IPv6), from /proc/net/tcp{,6}. */
  listeningPorts: number[]
}

/** Tags the probe's JSON so that shell noise cannot be mistaken for it. */
const PROBE_MARK = 'deployer-server-probe/1'

/**
 * Evaluates one Puma config in a child process (cwd = the release dir, ENV = the master's) and prints
 * its facts as one JSON line. stdout is moved to stderr first, so a config that prints cannot corrupt
 * the answer. Nothing here binds, forks a server or opens a socket: `Configuration#load` only runs the DSL.
 *
 * ARGV[1] `bundle`: the release bundles Puma, so Bundler sets up that release's Gemfile first (ENV has
 * BUNDLE_GEMFILE pointing at it) and the config is read by the Puma the release will run.
 */
const CONFIG_RB = String.raw`
require "json"
answer = $stdout.dup
$stdout.reopen($stderr)
file, mode = ARGV
facts = { "ok" => false }
config = nil
begin
  if mode == "bundle"
    begin
      require "bundler/setup"
    rescue StandardError, LoadError => e
      # Not a config error: the release's bundle itself does not load (pumaVersion stays null).
      raise "the release's bundle (#{ENV["BUNDLE_GEMFILE"]}) does not load: #{e.class}: #{e.message}"
    end
  end
  require "puma"
  require "puma/configuration"
  facts["pumaVersion"] = Puma::Const::PUMA_VERSION
  # prune_bundler re-execs bin/puma-wild; Debian's packaged Puma ships none and aborts at boot (F10).
  spec = Gem.loaded_specs["puma"]
  facts["pumaWild"] = spec.full_require_paths.any? { |d| File.exist?(File.join(d, "../bin/puma-wild")) } if spec
  raise "#{file} does not exist in #{Dir.pwd}" unless File.file?(file)
  config = Puma::Configuration.new({ config_files: [file] })
  config.load
  # Before clamp, which on 8.0 writes the binds it rewrites for IPv6 into the user layer.
  layers = config.instance_variable_get(:@_options) || config.instance_variable_get(:@options)
  facts["bindsInFile"] = layers.file_options.key?(:binds) if layers.respond_to?(:file_options)
  # 7.0+ refuse options until clamp (puma/puma#3297), which runs the single/cluster blocks (8.0), decides
  # the conditional preload default and rewrites [::] binds when the host has no IPv6, as Puma's boot does.
  # Before 7, Puma's boot clamps too, but only after forking; nothing here needs it.
  config.clamp if Gem::Version.new(Puma::Const::PUMA_VERSION) >= Gem::Version.new("7")
  options = config.options
  workers = options[:workers]
  workers = workers == :auto ? Etc.nprocessors : workers.to_i
  prune = options[:prune_bundler] ? true : false
  # Only the file layer tells "preload_app! written in the file" from Puma's computed default.
  explicit = options.file_options.key?(:preload_app) ? (options.file_options[:preload_app] ? true : false) : nil
  # 5.x/6.x compute the default in Configuration#initialize from WEB_CONCURRENCY; 7.0+ at clamp, from the
  # workers and prune_bundler the files set (puma/puma#3297).
  default_preload = options.default_options[:preload_app] ? true : false
  fork = options[:fork_worker]
  str = ->(value) { value.nil? ? nil : value.to_s }
  facts.merge!(
    "ok" => true,
    "workers" => workers,
    "preloadApp" => explicit,
    "defaultPreload" => default_preload,
    "pruneBundler" => prune,
    "directory" => str.(options[:directory]),
    "binds" => Array(options[:binds]).map(&:to_s),
    "pidfile" => str.(options[:pidfile]),
    "controlUrl" => str.(options[:control_url]),
    "stateFile" => str.(options[:state]),
    "stdoutRedirect" => str.(options[:redirect_stdout]),
    "workerShutdownTimeout" => options[:worker_shutdown_timeout],
    "workerBootTimeout" => options[:worker_boot_timeout],
    "forkWorker" => fork ? (fork == true ? 1000 : fork.to_i) : nil
  )
# A syntax error is a ScriptError and an exit in the file a SystemExit: neither is a StandardError.
rescue Exception => e
  # A NameError's message inspects its receiver: on Ruby 3.1 a Puma DSL or Configuration, options and
  # control token included. Say only which name failed and where.
  if e.is_a?(NameError)
    where = e.backtrace.to_a.find { |line| line.start_with?(file, "./#{file}", File.expand_path(file)) }
    where = where && where[/\A.*?:\d+/]
    text = "#{e.class}: #{e.is_a?(NoMethodError) ? "undefined method" : "undefined name"} '#{e.name}'#{where ? " at #{where}" : ""}"
  else
    text = e.instance_of?(RuntimeError) ? e.message : "#{e.class}: #{e.message}"
  end
  # Whatever the file set as control token so far, and any object's inspect output, never leaves here.
  layers = config && (config.instance_variable_get(:@_options) || config.instance_variable_get(:@options))
  secrets = [:user_options, :file_options, :default_options].map do |layer|
    layers.respond_to?(layer) ? layers.public_send(layer)[:control_auth_token] : nil
  end
  secrets.each { |secret| text = text.gsub(secret, "[redacted]") if secret.is_a?(String) && secret.length >= 4 }
  # Each #<...> up to its balanced end (or the end of the text, when a string in it holds a stray bracket).
  shown = +""
  while (start = text.index("#<"))
    depth = 0
    stop = (start...text.length).find { |i| (depth += { "<" => 1, ">" => -1 }.fetch(text[i], 0)).zero? && text[i] == ">" }
    shown << text[0...start] << "#<...>"
    text = stop ? text[(stop + 1)..-1] : ""
  end
  facts["error"] = (shown + text)[0, 600]
end
answer.write(JSON.generate(facts) + "\n")
`

/** The probe itself: ARGV is pidfile, control URL ('' for none), configs JSON, deploy_to; stdin the token. */
const PROBE_RB = String.raw`
require "json"
require "socket"
require "rbconfig"

pidfile, control_url, configs_json, deploy_to, config_rb, expected_json = ARGV
token = $stdin.read.to_s.strip

def slurp(path)
  File.binread(path)
rescue SystemCallError, IOError
  nil
end

def link(path)
  File.readlink(path)
rescue SystemCallError
  nil
end

def proctitle(pid)
  raw = slurp("/proc/#{pid}/cmdline")
  raw && raw.split("\0").reject(&:empty?).join(" ").strip
end

# "pid (comm) state ppid ... starttime ...": comm may itself hold spaces and parentheses. starttime (field
# 22, clock ticks since boot) tells a process from a later one that reused its pid; exec keeps it.
def stat_of(pid)
  raw = slurp("/proc/#{pid}/stat") or return nil
  fields = raw[(raw.rindex(")") + 2)..-1].split(" ")
  { state: fields[0], ppid: fields[1].to_i, start: fields[19].to_i }
end

def short(text, max = 300)
  text = text.to_s.strip
  text.length > max ? text[0, max] + "..." : text
end

master = { "pidfile" => pidfile, "pid" => nil, "alive" => false, "isPuma" => false, "running" => false,
           "environReadable" => false, "env" => {} }
master_env = nil
# The master seen before a restart (pid and start time), when the caller knows it. Puma rewrites its
# pidfile when the re-exec'd master boots (truncate, then write), so for a moment it can hold no pid.
expected = (JSON.parse(expected_json.to_s) rescue nil)
expected = nil unless expected.is_a?(Hash) && expected["pid"].is_a?(Integer)
pid_text = slurp(pidfile)
pid = pid_text && pid_text.strip =~ /\A\d+\z/ ? pid_text.strip.to_i : nil
if pid.nil? && expected && (seen = stat_of(expected["pid"])) && seen[:state] != "Z" && seen[:start] == expected["startTime"]
  pid = expected["pid"]
  master["pidFromExpected"] = true
end
if pid.nil?
  master["pidfileError"] = pid_text.nil? ? (File.exist?(pidfile) ? "unreadable" : "missing") : "no pid in it"
else
  master["pid"] = pid
  stat = stat_of(pid)
  # A zombie has already exited; it only waits to be reaped.
  if stat && stat[:state] != "Z"
    master["alive"] = true
    master["startTime"] = stat[:start]
    title = proctitle(pid).to_s
    # The master's proctitle is "puma <version> (<binds>) [tag]"; anything else is a stale pidfile,
    master["isPuma"] = master["running"] = title.start_with?("puma ")
    # or a master in the middle of a hot restart: USR2 re-execs it (same pid, same start time) and until
    # Puma sets its proctitle again its cmdline is the command it runs ("ruby .../bin/puma -C ...") or empty.
    master["settling"] = !master["isPuma"] && (title.empty? || title.match?(%r{(\A|[/ ])puma(-wild)?( |\z)}))
  end
  # Nothing more about an unrelated process: its command line may hold secrets.
  if master["running"]
    master["proctitle"] = title
    if (m = title.match(/\Apuma (\S+) \((.*?)\)(?: \[(.*)\])?\z/))
      master["pumaVersion"] = m[1]
      master["binds"] = m[2].split(",")
      master["tag"] = m[3] if m[3]
    end
    master["cwd"] = link("/proc/#{pid}/cwd")
    exe = link("/proc/#{pid}/exe")
    master["exe"] = exe
    if exe && File.basename(exe) =~ /ruby/ && !exe.end_with?(" (deleted)")
      version = IO.popen({ "RUBYOPT" => nil }, [exe, "--disable-gems", "-e", "print RUBY_VERSION"], err: File::NULL, &:read) rescue nil
      master["rubyVersion"] = version if $?&.success? && version =~ /\A\d+\.\d+/
    end
    environ = slurp("/proc/#{pid}/environ")
    if environ
      master_env = {}
      environ.split("\0").each do |pair|
        key, value = pair.split("=", 2)
        master_env[key] = value if key && !key.empty? && value
      end
      master["environReadable"] = true
      # Only these derived facts: the rest of the environment holds secrets.
      master["env"] = { "pwd" => master_env["PWD"], "webConcurrency" => master_env["WEB_CONCURRENCY"],
                        "skipUsr2" => master_env.key?("PUMA_SKIP_SIGUSR2"), "bundleGemfile" => master_env["BUNDLE_GEMFILE"] }
    end
  end
end

workers = []
if master["running"]
  pid = master["pid"]
  candidates = {}
  Dir.children("/proc").each do |name|
    next unless name =~ /\A\d+\z/
    stat = stat_of(name) or next
    next if stat[:state] == "Z"
    title = proctitle(name) or next
    next unless title.include?("cluster worker")
    candidates[name.to_i] = [stat[:ppid], title]
  end
  candidates.each do |cpid, (ppid, title)|
    # With fork_worker, workers 1..N-1 are forked by worker 0: the master's grandchildren.
    next unless ppid == pid || (candidates[ppid] && candidates[ppid][0] == pid)
    m = title.match(/cluster worker (\d+): (\d+)(?: \[(.*)\])?/)
    worker = { "pid" => cpid, "ppid" => ppid, "index" => m && m[1].to_i, "masterPid" => m && m[2].to_i,
               "cwd" => link("/proc/#{cpid}/cwd"), "cmdline" => title }
    worker["tag"] = m[3] if m && m[3]
    workers << worker
  end
  workers.sort_by! { |w| [w["index"] || -1, w["pid"]] }
end

def fetch_stats(url, token)
  m = url.match(%r{\A(unix|tcp)://(.+)\z}) or return [nil, "unsupported control URL #{url}"]
  # Puma compares the raw query string, so the token cannot be escaped: refuse what would break the request.
  return [nil, "the control token holds whitespace"] if token =~ /\s/
  socket =
    if m[1] == "unix"
      path = m[2].start_with?("@") ? "\0" + m[2][1..-1] : m[2]
      UNIXSocket.new(path)
    else
      host, port = m[2].match(/\A\[?(.*?)\]?:(\d+)\z/)&.captures
      return [nil, "no port in control URL #{url}"] unless port
      Socket.tcp(host, port.to_i, connect_timeout: 3)
    end
  query = token.empty? ? "" : "?token=#{token}"
  # HTTP/1.0 makes Puma close the connection after the answer, so reading to EOF is enough.
  socket.write("GET /stats#{query} HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n")
  data = +""
  deadline = Time.now + 5
  loop do
    left = deadline - Time.now
    return [nil, "no answer from #{url} within 5 s"] if left <= 0 || !IO.select([socket], nil, nil, left)
    chunk = socket.read_nonblock(65536, exception: false)
    break if chunk.nil?
    data << chunk if chunk.is_a?(String)
  end
  head, body = data.split("\r\n\r\n", 2)
  status = head.to_s[%r{\AHTTP/\d(?:\.\d)? (\d{3})}, 1]
  return [nil, "not an HTTP answer from #{url}"] unless status
  return [nil, "HTTP #{status}: #{short(body, 120)}"] unless status == "200"
  [JSON.parse(body.to_s), nil]
rescue JSON::ParserError
  [nil, "stats from #{url} are not JSON"]
rescue Errno::ENOENT
  [nil, "control socket #{m[2]} does not exist"]
rescue Errno::ECONNREFUSED
  [nil, "connection refused at #{url}"]
rescue SystemCallError, IOError, SocketError => e
  [nil, short("#{e.class}: #{e.message}")]
ensure
  socket&.close rescue nil
end

stats = stats_error = nil
stats, stats_error = fetch_stats(control_url, token) unless control_url.empty?

def run_child(env, argv, dir, timeout)
  out_r, out_w = IO.pipe
  err_r, err_w = IO.pipe
  pid = Process.spawn(env, *argv, chdir: dir, unsetenv_others: true, in: File::NULL, out: out_w, err: err_w)
  out_w.close
  err_w.close
  buffers = { out_r => +"", err_r => +"" }
  deadline = Time.now + timeout
  until buffers.keys.all?(&:closed?)
    left = deadline - Time.now
    ready = left > 0 && IO.select(buffers.keys.reject(&:closed?), nil, nil, left)
    unless ready
      Process.kill("KILL", pid) rescue nil
      Process.wait(pid)
      return [nil, "evaluating it took longer than #{timeout} s"]
    end
    ready[0].each do |io|
      chunk = io.read_nonblock(65536, exception: false)
      if chunk.nil? then io.close elsif chunk.is_a?(String) then buffers[io] << chunk end
    end
  end
  Process.wait(pid)
  [buffers[out_r], buffers[err_r]]
end

# Evaluate configs with the master's interpreter and environment when we can see them: that is how the
# master read its config, and config files read ENV (WEB_CONCURRENCY, PUMA_BIND, ...).
interpreter = master["exe"] if master["running"] && master["exe"] && File.basename(master["exe"]) =~ /ruby/ &&
                               File.executable?(master["exe"])
interpreter ||= RbConfig.ruby
child_env = master_env || ENV.to_h
# A release that bundles Puma (its Gemfile.lock, or Gemfile before the first install, names it) is read
# by that Puma under its own bundle, as "bundle exec puma" in it will run: never by the master's Puma or
# whichever one the SSH shell finds. The running release's config keeps the master's own environment.
def bundles_puma?(dir)
  lock = File.join(dir, "Gemfile.lock")
  return File.read(lock).match?(/^    puma \(/) if File.file?(lock)
  gemfile = File.join(dir, "Gemfile")
  File.file?(gemfile) && File.read(gemfile).match?(/^\s*gem\s+["']puma["']/)
rescue SystemCallError
  false
end

# The master's environment without what its own "bundle exec" put there (Bundler keeps the values it
# replaced in BUNDLER_ORIG_*), pointed at the release's Gemfile; Bundler then reads that release's
# .bundle/config (its path, without, ...) itself.
def release_bundle_env(env, dir)
  clean = env.reject { |key, _| key.start_with?("BUNDLER_ORIG_") }
  env.each do |key, value|
    next unless key.start_with?("BUNDLER_ORIG_")
    name = key.delete_prefix("BUNDLER_ORIG_")
    if value == "BUNDLER_ENVIRONMENT_PRESERVER_INTENTIONALLY_NIL" then clean.delete(name) else clean[name] = value end
  end
  %w[BUNDLE_BIN_PATH BUNDLER_SETUP BUNDLER_VERSION].each { |key| clean.delete(key) }
  rubyopt = clean["RUBYOPT"].to_s.split(" ").reject { |opt| opt =~ /\A-r\s*bundler\/setup\z/ || opt.include?("bundler/setup") }
  rubyopt.empty? ? clean.delete("RUBYOPT") : clean["RUBYOPT"] = rubyopt.join(" ")
  clean.merge("BUNDLE_GEMFILE" => File.join(dir, "Gemfile"))
end

def evaluate_config(entry, interpreter, env, deploy_to, config_rb, master_cwd = nil, token = "")
  dir = File.expand_path(entry["dir"], deploy_to)
  return { "ok" => false, "error" => "directory #{dir} does not exist" } unless File.directory?(dir)
  running = master_cwd && (File.realpath(dir) rescue dir) == master_cwd
  bundle = !running && bundles_puma?(dir)
  env = release_bundle_env(env, dir) if bundle
  out, err = run_child(env, [interpreter, "-e", config_rb, "--", entry["file"], bundle ? "bundle" : "plain"], dir, 30)
  return { "ok" => false, "error" => err } if out.nil?
  line = out.lines.reverse.find { |l| l.start_with?("{") }
  facts = line ? JSON.parse(line) : { "ok" => false, "error" => short("the config evaluator printed nothing: #{err.to_s.lines.last(3).join}") }
  facts["error"] = facts["error"].gsub(token, "[redacted]") if facts["error"].is_a?(String) && token.length >= 4
  facts
rescue SystemCallError, JSON::ParserError => e
  { "ok" => false, "error" => short("#{e.class}: #{e.message}") }
end

configs = JSON.parse(configs_json).map do |entry|
  { "dir" => entry["dir"], "file" => entry["file"], "envSource" => master_env ? "master" : "probe" }
    .merge(evaluate_config(entry, interpreter, child_env, deploy_to, config_rb, master["running"] && master["cwd"], token))
end

# Ports in LISTEN state (st 0A) in this network namespace: a port Puma needs that something else holds.
listening = %w[/proc/net/tcp /proc/net/tcp6].flat_map do |table|
  (slurp(table) || "").lines.drop(1).filter_map do |row|
    fields = row.split
    fields[1].split(":").last.to_i(16) if fields[3] == "0A"
  end
end.uniq.sort

current = File.realpath(File.join(deploy_to, "current")) rescue nil
puts JSON.generate("probe" => "${PROBE_MARK}", "master" => master, "workers" => workers, "stats" => stats,
                   "statsError" => stats_error, "configs" => configs, "currentPath" => current,
                   "listeningPorts" => listening)
`

/**
 * The host-side probe: POSIX sh that finds a Ruby (the PATH's, else the running master's own
 * interpreter, for rbenv/chruby hosts whose non-login SSH shell has no ruby on PATH) and runs the probe
 * in it. Prints one JSON document; feed the control token on stdin (empty for none).
 */
export function serverProbeCommand(options: ServerProbeOptions): string {
  const configs = JSON.stringify(options.configs.map(({ dir, file }) => ({ dir, file })))
  return [
    'set -u',
    `pidfile=${quote(options.pidfile)}`,
    'ruby_bin=$(command -v ruby 2>/dev/null) || ruby_bin=',
    'if [ -z "$ruby_bin" ]; then',
    '  pid=$(cat "$pidfile" 2>/dev/null) || pid=',
    '  case $pid in ""|*[!0-9]*) ;; *) ruby_bin=$(readlink "/proc/$pid/exe" 2>/dev/null) || ruby_bin= ;; esac',
    '  case ${ruby_bin##*/} in *ruby*) ;; *) ruby_bin= ;; esac',
    'fi',
    'if [ -z "$ruby_bin" ]; then echo "deployer: no ruby on PATH to probe Puma with" >&2; exit 127; fi',
    // `--` ends Ruby's own options, so an argument starting with `-` stays an argument. No RubyGems:
    // it needs only the standard library (the config is evaluated in a child with the release's
    // bundle), and without it a look costs a sixth of the CPU, taken from a restart being waited for.
    `exec "$ruby_bin" --disable-gems -e ${quote(PROBE_RB)} -- "$pidfile" ${quote(options.controlUrl ?? '')} ${quote(configs)} ${quote(options.deployTo)} ${quote(CONFIG_RB)} ${quote(JSON.stringify(options.expectMaster ?? null))}`,
  ].join('\n')
}

/** Parses serverProbeCommand's output; throws when it holds no probe JSON. Missing fields are tolerated. */
export function parseServerProbe(stdout: string): ServerProbe {
  // A login shell's rc files may print before the probe; its answer is the last JSON line.
  const line = stdout
    .split('\n')
    .map((text) => text.trim())
    .reverse()
    .find((text) => text.startsWith('{'))
  let doc: unknown
  try {
    doc = line === undefined ? undefined : JSON.parse(line)
  } catch {
    doc = undefined
  }
  if (!isRecord(doc) || doc.probe !== PROBE_MARK || !isRecord(doc.master)) {
    const shown = stdout.trim().slice(0, 200)
    throw new Error(
      `The Puma probe did not print its JSON report${shown ? `; it printed: ${shown}` : ' (its output was empty)'}.`,
    )
  }
  return {
    master: parseMaster(doc.master),
    workers: arrayOf(doc.workers).filter(isRecord).map(parseWorker),
    stats: isRecord(doc.stats) ? normalizeStats(doc.stats) : null,
    statsError: str(doc.statsError) ?? null,
    configs: arrayOf(doc.configs).filter(isRecord).map(parseConfig),
    currentPath: str(doc.currentPath) ?? null,
    listeningPorts: arrayOf(doc.listeningPorts).filter((port): port is number => typeof port === 'number'),
  }
}

/** Runs the probe through `run(command, stdin)` (e.g. HostSession.run) and parses its report. */
export async function probeServer(
  run: (command: string, stdin: string) => Promise<string>,
  options: ServerProbeOptions,
  token?: string,
): Promise<ServerProbe> {
  return parseServerProbe(await run(serverProbeCommand(options), token ?? ''))
}

/**
 * Puma's raw `/stats` with camelCase keys. Cluster mode has `worker_status`; single mode only the
 * server's pool numbers (`backlog`, `running`, ...) next to `started_at`.
 */
export function normalizeStats(raw: Record<string, unknown>): PumaStats {
  const cluster = 'worker_status' in raw || 'workers' in raw || 'phase' in raw
  const stats: PumaStats = {
    mode: cluster ? 'cluster' : 'single',
    startedAt: str(raw.started_at) ?? null,
    phase: num(raw.phase) ?? null,
    workers: num(raw.workers) ?? null,
    bootedWorkers: num(raw.booted_workers) ?? null,
    oldWorkers: num(raw.old_workers) ?? null,
    workerStatus: arrayOf(raw.worker_status)
      .filter(isRecord)
      .map((entry) =>
        defined({
          index: num(entry.index) ?? null,
          pid: num(entry.pid) ?? null,
          phase: num(entry.phase) ?? null,
          booted: typeof entry.booted === 'boolean' ? entry.booted : null,
          startedAt: str(entry.started_at),
          lastCheckin: str(entry.last_checkin),
          lastStatus: numbersOf(entry.last_status),
        }),
      ),
  }
  if (!cluster) stats.pool = numbersOf(raw)
  if (isRecord(raw.versions) && typeof raw.versions.puma === 'string') {
    const ruby = isRecord(raw.versions.ruby) ? raw.versions.ruby : undefined
    stats.versions = {
      puma: raw.versions.puma,
      ruby: ruby && {
        engine: str(ruby.engine),
        version: str(ruby.version),
        patchlevel: num(ruby.patchlevel),
      },
    }
  }
  return stats
}

function parseMaster(raw: Record<string, unknown>): MasterFacts {
  const env = isRecord(raw.env) ? raw.env : {}
  const alive = raw.alive === true
  const isPuma = raw.isPuma === true
  return defined({
    pidfile: str(raw.pidfile) ?? '',
    pid: num(raw.pid) ?? null,
    pidfileError: str(raw.pidfileError),
    alive,
    isPuma,
    running: raw.running === true && alive && isPuma,
    startTime: num(raw.startTime),
    settling: raw.settling === true && alive && !isPuma,
    pidFromExpected: raw.pidFromExpected === true ? true : undefined,
    proctitle: str(raw.proctitle),
    cwd: str(raw.cwd),
    exe: str(raw.exe),
    pumaVersion: str(raw.pumaVersion),
    binds: Array.isArray(raw.binds) ? raw.binds.filter((b): b is string => typeof b === 'string') : undefined,
    tag: str(raw.tag),
    rubyVersion: str(raw.rubyVersion),
    environReadable: raw.environReadable === true,
    env: defined({
      pwd: str(env.pwd),
      webConcurrency: str(env.webConcurrency),
      skipUsr2: typeof env.skipUsr2 === 'boolean' ? env.skipUsr2 : undefined,
      bundleGemfile: str(env.bundleGemfile),
    }),
  })
}

function parseWorker(raw: Record<string, unknown>): WorkerFacts {
  return defined({
    pid: num(raw.pid) ?? 0,
    ppid: num(raw.ppid) ?? 0,
    index: num(raw.index) ?? null,
    masterPid: num(raw.masterPid) ?? null,
    tag: str(raw.tag),
    cwd: str(raw.cwd),
    cmdline: str(raw.cmdline) ?? '',
  })
}

function parseConfig(raw: Record<string, unknown>): PumaConfigFacts {
  const bool = (value: unknown) => (typeof value === 'boolean' ? value : null)
  return {
    dir: str(raw.dir) ?? '',
    file: str(raw.file) ?? '',
    ok: raw.ok === true,
    error: str(raw.error),
    envSource: raw.envSource === 'master' ? 'master' : 'probe',
    pumaVersion: str(raw.pumaVersion) ?? null,
    workers: num(raw.workers) ?? null,
    preloadApp: bool(raw.preloadApp),
    defaultPreload: bool(raw.defaultPreload),
    pruneBundler: bool(raw.pruneBundler),
    directory: str(raw.directory) ?? null,
    binds: arrayOf(raw.binds).filter((b): b is string => typeof b === 'string'),
    pidfile: str(raw.pidfile) ?? null,
    controlUrl: str(raw.controlUrl) ?? null,
    stateFile: str(raw.stateFile) ?? null,
    stdoutRedirect: str(raw.stdoutRedirect) ?? null,
    workerShutdownTimeout: num(raw.workerShutdownTimeout) ?? null,
    workerBootTimeout: num(raw.workerBootTimeout) ?? null,
    forkWorker: num(raw.forkWorker) ?? null,
    ...(typeof raw.pumaWild === 'boolean' ? { pumaWild: raw.pumaWild } : {}),
    ...(typeof raw.bindsInFile === 'boolean' ? { bindsInFile: raw.bindsInFile } : {}),
  }
}

/** Numeric fields of a stats object, keys camelCased (`pool_capacity` -> `poolCapacity`). */
function numbersOf(value: unknown): Record<string, number> {
  const out: Record<string, number> = {}
  if (!isRecord(value)) return out
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry === 'number') out[key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = entry
  }
  return out
}

/** The object without its undefined fields, so that reports compare and print cleanly. */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as T
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function arrayOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : []
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined
}
