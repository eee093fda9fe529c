/**
 * Word lists for generated names: an adjective and an animal, both
 * capitalized, make a name such as `HeartyHeron`. Every word is
 * family-friendly and made of ASCII letters only, so a generated name is
 * always a valid name.
 *
 * @module
 */

function words(list: string): readonly string[] {
  return Object.freeze(list.trim().split(/\s+/));
}

export const ADJECTIVES: readonly string[] = words(`
  Able Agile Airy Alert Amber Amiable Ample Amused Ancient Apt
  Arctic Ardent Artful Astute Autumn Avid Awake Balmy Bashful Beaming
  Big Blissful Blithe Blue Bold Bouncy Brave Breezy Bright Brilliant
  Brisk Bubbly Busy Calm Candid Capable Careful Caring Casual Charming
  Cheerful Cheery Chipper Chirpy Civil Classic Clean Clear Clever Cloudy
  Cosmic Cozy Crafty Creative Crimson Crisp Curious Curly Dainty Dapper
  Daring Dashing Dazzling Decent Deft Devoted Diligent Direct Dreamy Dynamic
  Eager Early Earnest Easy Elegant Eloquent Emerald Endless Energetic Epic
  Exact Excited Expert Fabled Fair Faithful Famous Fancy Fast Fearless
  Festive Fine Firm Fluent Fluffy Flying Focused Fond Fresh Friendly
  Frosty Frugal Funny Fuzzy Gallant Generous Gentle Genuine Giant Gifted
  Giddy Glad Gleaming Glowing Golden Good Graceful Gracious Grand Grateful
  Great Green Groovy Handy Happy Hardy Harmonic Hearty Helpful Heroic
  Honest Hopeful Humble Ideal Immense Jaunty Jazzy Jolly Jovial Joyful
  Jubilant Keen Kind Kindly Lavish Leafy Lively Logical Loyal Lucid
  Lucky Lunar Lush Magic Majestic Mellow Merry Mighty Mindful Minty
  Misty Modest Mossy Musical Mystic Nautical Neat Nimble Noble Novel
  Oaken Oceanic Open Optimal Orange Orderly Patient Peaceful Peppy Perky
  Pioneer Placid Playful Pleasant Plucky Plush Poetic Polite Polished Precise
  Prime Proud Prudent Punctual Pure Purple Quick Quiet Quirky Radiant
  Rapid Rare Ready Regal Relaxed Reliable Resolute Rosy Royal Ruby
  Rustic Sage Salty Sandy Sapphire Savvy Scarlet Scenic Serene Sharp
  Shiny Silent Silky Silver Simple Sincere Skillful Sleek Smart Smiling
  Smooth Snappy Snowy Snug Soft Solar Solid Sonic Sparkling Speedy
  Spirited Splendid Spotless Sprightly Spring Starry Steady Stellar Sterling Stoic
  Stormy Strong Sturdy Stylish Sublime Summer Sunny Super Swift Tactful
  Talented Tall Tender Thankful Thoughtful Thrifty Tidy Tiny Tireless Topaz
  Tranquil Trusty Truthful Twinkling Upbeat Valiant Vast Velvet Verdant Vibrant
  Vigilant Violet Vivid Warm Wary Wavy Whimsical Whistling Wholesome Wild
  Willing Windy Winter Wise Witty Wonderful Woolly Worthy Youthful Zany
  Zealous Zen Zesty Zippy Bouncing Brainy Buoyant Cordial Dutiful Fiery
  Frisky Heavenly Humming Inventive Lofty Nifty Rambling Roaming Sunlit Wandering
`);

export const ANIMALS: readonly string[] = words(`
  Aardvark Albatross Alpaca Anteater Antelope Armadillo Axolotl Badger Barracuda Bat
  Beaver Bee Beetle Bison Bluebird Bobcat Buffalo Bumblebee Butterfly Camel
  Canary Capybara Cardinal Caribou Cat Chameleon Cheetah Chickadee Chinchilla Chipmunk
  Cicada Clam Cobra Cockatoo Condor Coral Cougar Coyote Crab Crane
  Cricket Crow Cuckoo Deer Dingo Dolphin Donkey Dove Dragonfly Duck
  Eagle Eel Egret Elephant Elk Emu Falcon Ferret Finch Firefly
  Flamingo Fox Frog Gazelle Gecko Gerbil Gibbon Giraffe Gnu Goat
  Goldfinch Goldfish Goose Gopher Gorilla Grasshopper Grouse Gull Hamster Hare
  Hawk Hedgehog Heron Hippo Hornet Horse Hummingbird Ibex Ibis Iguana
  Impala Jackal Jaguar Jay Jellyfish Kangaroo Kestrel Kingfisher Kiwi Koala
  Koi Kookaburra Ladybug Lark Lemming Lemur Leopard Lion Lizard Llama
  Lobster Lynx Macaw Magpie Manatee Mantis Marmot Meerkat Mink Mole
  Mongoose Moose Moth Narwhal Newt Nightingale Ocelot Octopus Okapi Orca
  Oriole Oryx Ostrich Otter Owl Ox Panda Panther Parrot Peacock
  Pelican Penguin Pheasant Pigeon Platypus Pony Porcupine Porpoise Puffin Puma
  Quail Quokka Rabbit Raccoon Raven Reindeer Rhino Robin Salamander Salmon
  Seahorse Seal Sparrow Squirrel Starling Stingray Stork Swallow Swan Tapir
  Tiger Toucan Turtle Walrus Weasel Whale Wolf Wombat Woodpecker Wren
  Yak Zebra
`);
