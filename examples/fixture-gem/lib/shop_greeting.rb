module ShopGreeting
  def self.text
    "hello"
  end
end
