# Evaluates one Puma config in a child process (cwd = the release dir, ENV = the master's) and prints
# its facts as one JSON line. stdout is moved to stderr first, so a config that prints cannot corrupt
# the answer. Nothing here binds, forks a server or opens a socket: `Configuration#load` only runs the DSL.
#
# ARGV: the config file (relative to the cwd), then `bundle` or `plain`. `bundle`: the release bundles
# Puma, so Bundler sets up that release's Gemfile first (ENV has BUNDLE_GEMFILE pointing at it) and the
# config is read by the Puma the release will run.
#
# server-probe.rb runs this text with `ruby -e`; src/restart/ruby-scripts.ts carries it (npm run build).

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
