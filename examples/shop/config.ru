# A minimal Rack app that says which release serves it: what deployer's health checks and tests read.
root = __dir__
release = File.exist?(File.join(root, "RELEASE")) ? File.read(File.join(root, "RELEASE")).strip : "dev"

# Debian's puma runs outside Bundler; Bundler.setup drops the load paths of gems that are active but not
# in the bundle (puma, nio4r, rack), so keep them (see shared/reference/test-bench.md).
if File.exist?(File.join(root, "Gemfile.lock"))
  saved_load_path = $LOAD_PATH.dup
  require "bundler/setup"
  $LOAD_PATH.concat(saved_load_path - $LOAD_PATH)
  require "shop_greeting"
  greeting = ShopGreeting.text
else
  greeting = "hello"
end

run lambda { |env|
  body = "#{greeting} from release #{release} (pid #{Process.pid}, cwd #{Dir.pwd})\n"
  [200, { "content-type" => "text/plain" }, [body]]
}
