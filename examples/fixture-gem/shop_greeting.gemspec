Gem::Specification.new do |spec|
  spec.name = "shop_greeting"
  spec.version = ENV.fetch("SHOP_GREETING_VERSION", "1.0.0")
  spec.summary = "A tiny gem vendored into the example app, so its install is real and offline."
  spec.authors = ["deployer"]
  spec.files = ["lib/shop_greeting.rb"]
  spec.license = "MIT"
end
