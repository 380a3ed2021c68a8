"""Every default of Flux Lab in one place: a reader sees the whole policy at once."""

from __future__ import annotations

# --- the model and the service ---------------------------------------------------------
MODEL_SLUG = "flux-2-max"  # the model of a request that names none (every run and recipe before issue 20)
# The FLUX.2 models Segmind serves with this request schema, by slug, with the names people read.
# [pro] takes the same parameters as [max]; [flex] takes those and FLEX_FIELDS (flux-2-klein-* on
# Segmind has another schema and is not one of them).
MODELS = {"flux-2-max": "FLUX.2 [max]", "flux-2-pro": "FLUX.2 [pro]", "flux-2-flex": "FLUX.2 [flex]"}
FLEX_SLUG = "flux-2-flex"
BASE_URL = "https://api.segmind.com"
UPLOAD_URL = "https://workflows-api.segmind.com/upload-asset"
API_KEY_ENV = "SEGMIND_API_KEY"
BASE_URL_ENV = "SEGMIND_BASE_URL"
UPLOAD_URL_ENV = "SEGMIND_UPLOAD_URL"
RPM_ENV = "SEGMIND_RPM"
# Who can reach the app: `make run` binds this address (this computer only) unless ADDRESS= is given;
# any other address needs sign-in ([auth] in .streamlit/secrets.toml) or this variable set to 1.
LOCAL_ADDRESS = "127.0.0.1"
OPEN_NETWORK_ENV = "FLUX_LAB_OPEN_NETWORK"
USER_AGENT = "flux-lab/0.1"

# --- request parameters (protocol decisions table) --------------------------------------
WIDTH = 1024
HEIGHT = 1024
SIZE_MIN = 64
SIZE_MAX = 2048
SIZE_STEP = 16
MAX_PIXELS = 4 * 1024 * 1024
SAFETY_TOLERANCE = 3
SAFETY_MIN = 0
SAFETY_MAX = 6
OUTPUT_FORMATS = ("png", "jpeg")
OUTPUT_FORMAT = "png"
MAX_IMAGE_URLS = 8
# A prompt's length limit. FLUX.2 reads long prompts (third-party gateways quote 32K tokens), and the
# longest structured template here is ~2,000 characters; 10,000 is five of those, about 1,500 words,
# more than any real prompt, while a pasted file or a megabyte of text is refused before it is sent,
# written to the ledger and embedded in every image.
PROMPT_MAX_CHARS = 10_000
SEED_MAX = 2**32 - 1  # a random seed is drawn from 0..SEED_MAX
# FLUX.2 [flex]'s own parameters: BFL's API for [flex] takes steps 1..50 (default 50) and guidance
# 1.5..10 (default 4.5). prompt_upsampling is off by default, so a seed stays meaningful (an upsampled
# prompt is rewritten by the server, so the same seed need not make the same image again).
FLEX_FIELDS = ("steps", "guidance", "prompt_upsampling")
FLEX_STEPS = 50
FLEX_STEPS_MIN = 1
FLEX_STEPS_MAX = 50
FLEX_GUIDANCE = 4.5
FLEX_GUIDANCE_MIN = 1.5
FLEX_GUIDANCE_MAX = 10.0
FLEX_PROMPT_UPSAMPLING = False

# --- HTTP ------------------------------------------------------------------------------
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
SYNC_READ_TIMEOUT_S = 120.0  # v1 blocks for the whole inference (FLUX.2 [max] p95 ~ 47 s)
DOWNLOAD_TIMEOUT_S = 60.0
OUTPUT_MAX_BYTES = 64 * 1024 * 1024  # a 4 MP PNG is ~8-12 MB: anything past this is not our image
OUTPUT_MAX_PIXELS = 16_000_000  # FLUX.2 makes at most 4 MP; a header claiming more is refused
DOWNLOAD_MAX_REDIRECTS = 5
DOWNLOAD_MAX_ATTEMPTS = 3  # drives of one run's download (each with its own GET retries) before giving up

# --- retries (GETs are always safe; a submit only when it provably never landed) --------
RETRY_BASE_S = 0.5
RETRY_CAP_S = 20.0
GET_MAX_ATTEMPTS = 8  # per single status/result/download GET
SUBMIT_MAX_ATTEMPTS = 4  # only for connect errors, 429 and 5xx with no job in the history
SUBMIT_RETRY_STATUSES = (429,)  # refused before any job: sent again at once (after the reset)
SUBMIT_CHECK_STATUSES = (500, 502, 503)  # Segmind says not taken; the history is checked first
SUBMIT_AMBIGUOUS_STATUSES = (504,)  # the gateway timed out: it may have queued the job

# --- polling ---------------------------------------------------------------------------
POLL_FIRST_S = 0.5  # first status poll after submit when nothing is known
POLL_MIN_S = 0.5
POLL_MAX_S = 5.0
POLL_GROWTH = 1.35
POLL_NEAR_EXPECTED_S = 1.0  # cadence once a job is past its expected duration
EXPECTED_INFERENCE_S = None  # unknown until the ledger or this process has seen a job
# --- the request scheduler's looks at jobs in flight (flux_core/segmind/scheduler.py) ---------
SCHEDULER_CLOSE_S = 5.0  # how long a closing scheduler waits for its connections to close
EXPECTED_MAX_S = 26.0  # FLUX.2 [max]'s median submit-to-result time, until the ledger knows better
EXPECTED_REFRESH_S = 60.0  # how often a runner reads the ledger's durations again
COHORT_SPAN_S = 10.0  # jobs of one expected duration submitted within this of the first: a cohort
SENTINELS = 2  # of a cohort, this many of the oldest are looked at before any has finished
LOOK_WINDOW_FRACTION = 0.6  # from this share of the expected duration, every job is looked at
LOOK_SENTINEL_GROWTH = 0.2  # a sentinel's interval: this share of its age, between the bounds
LOOK_SENTINEL_GROWTH_KNOWN = 0.5  # ... when the expected duration was measured, not the prior
LOOK_SENTINEL_MAX_S = 5.0
LOOK_DENSE_FRACTION = 0.03  # near the finish: this share of the expected duration between looks
LOOK_DENSE_MIN_S = 0.25
LOOK_DENSE_MAX_S = 1.0
LOOK_BATCH_GAIN_MAX = 2.5  # a history read for n jobs: looks up to this many times as often
LOOK_MIN_S = 0.1
LOOK_BACKSTOP_S = 30.0  # a job the history watches is still polled itself this often
LOOK_HISTORY_MAX_PAGES = 3  # of 100 rows each, per read of the history as a poll
HISTORY_SHOWS_WITHIN_S = 3.0  # a history fit to poll with lists a request this soon after submit
HISTORY_MAX_LAG_S = 1.0  # ... and shows it finished no later than this after a poll did
HISTORY_MISSES_MAX = 3  # reads that fail (or list no job in flight) before polling each job
HISTORY_RETRY_S = 600.0  # then the history is tried as a poll again after this

# --- request budget shared by every request made with one key -------------------------
REQUESTS_PER_MINUTE = 50  # Segmind Pro plan: where a key's learning starts; SEGMIND_RPM forces a limit
BUDGET_WINDOW_S = 60.0
BUDGET_RAMP_START = 2  # requests past what the server has taken, in flight at once, at first
BUDGET_RAMP_MAX = 64
BUDGET_PROBE_COOLDOWN_S = 900.0  # after a 429 the learned limit holds this long before probing again
PRIORITY_RESULT = 0  # when requests are short: a finished job's result first (it brings an image)
PRIORITY_SUBMIT = 1
PRIORITY_HISTORY = 2  # one read of the request history looks at every job in flight
PRIORITY_POLL = 3
BUDGET_RECHECK_S = 0.05  # a waiter whose slot hangs on a reply in flight asks again after this

# --- results ---------------------------------------------------------------------------
RETENTION_S = 3600.0  # Segmind keeps request status and results for one hour
THUMBNAIL_PX = 200  # thumbnails: galleries show them at about this size
THUMBNAIL_QUALITY = 78
THUMBNAIL_CACHE_CONTROL = "public, max-age=31536000, immutable"  # named by their image's hash

FTS_PREFIX_MIN_CHARS = 3  # a searched word this long also finds longer words: "teapo" finds "teapot"

# --- local data ------------------------------------------------------------------------
DATA_DIR_ENV = "FLUX_LAB_DATA"
DATA_DIR = "~/.flux-lab"
DB_NAME = "ledger.db"
LEASE_TTL_S = 90.0  # a run's lease lapses this long after its owner last renewed it
LEASE_RENEW_S = 20.0  # how often a runner renews the leases of the runs it drives

# --- logging ---------------------------------------------------------------------------
LOG_LEVEL_ENV = "FLUX_LAB_LOG_LEVEL"
LOG_LEVEL = "INFO"
LOG_STDERR_ENV = "FLUX_LAB_LOG_STDERR"  # "1": also log to stderr
LOG_FILE = "flux-lab.log"  # in <data dir>/logs/
LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 3

# --- the embedded emulator -------------------------------------------------------------
EMULATOR_HOST = "127.0.0.1"
EMULATOR_PORT = 8765
EMULATOR_KEY = "SG_emulator000000"
EMULATOR_LATENCY_S = 2.0
EMULATOR_RENDERS_KEPT = 500  # images the emulator drew ahead for jobs not yet collected
EMULATOR_LATENCY_SPREAD_S = 0.5
EMULATOR_QUEUE_S = 0.3
EMULATOR_CREDITS = 100.0
EMULATOR_COST = 0.07  # credits per [max] image (configurable); other models in PRICES_USD's proportions
EMULATOR_STATE_FILE = "emulator-state.json"  # the embedded emulator's jobs, kept across app restarts
EMULATOR_ASSETS_DIR = "emulator-assets"  # beside the state file: uploaded references, kept likewise
# The preview draws what a prompt asks for (its strings and palette), with known mistakes for the checks:
EMULATOR_MISSPELL_CHANCE = 0.35  # of a seed drawing one expected string misspelt
EMULATOR_WRONG_COLOUR_CHANCE = 0.2  # of a seed drawing one palette colour as a clearly wrong one
EMULATOR_OUTLINES = 6  # thin outlined shapes over a palette, placed by the seed so seeds differ

# --- the app ---------------------------------------------------------------------------
APP_PORT = 8501
PRICE_ENV = "FLUX_LAB_PRICE"  # credits per image, for cost estimates against Segmind
# Live pages (flux_core/ledger/changes.py, flux_ui/live.py): told of a change, never on a timer
CHANGES_LOOK_S = 0.1  # how often the one watcher of a ledger reads PRAGMA data_version (a poke: at once)
CHANGES_IDLE_S = 60.0  # the watcher stops after this long with nobody listening (starts again when asked)
LIVE_WAIT_S = (
    25.0  # a tab's question on the /_flux/changes socket is answered after this long without a change
)
LIVE_RETRY_S = 1.0  # a tab whose change-feed socket closed (server down) connects again after this, doubling
LIVE_RETRY_MAX_S = 30.0  # up to this
LIVE_REFIRE_S = 2.0  # a live part told of a change and not drawn again by then is told again
LIVE_LATER_S = 0.4  # a live part nobody waits for is told once the ledger has been quiet this long
LIVE_LATER_MAX_S = 1.2  # and at most this long after the first change it missed
SWEEP_VIEWS_KEPT = 32  # sweeps a workbench keeps as read (one per state of each), shared by its pages
LIVE_TOPIC_MAX_IDS = 200  # a live part's topic names at most this many runs (else it hears every change)
LIVE_TOPICS_MAX = 64  # topics one question on the change feed may ask about (a tab's live parts)
LIVE_DIGESTS_KEPT = 256  # topic digests a change feed keeps for its latest version
KEY_CHECK_WAIT_S = 2.0  # how long a page waits for the first credits call that verifies a key
ORPHAN_SCAN_S = 30.0  # how often the app looks for runs nobody is driving
RECENT_RUNS = 12  # thumbnails in the recent-runs strip
RECENT_COLUMNS = 6  # recent-runs cards a row, at most
ASSET_GZIP_LEVEL = 6  # Streamlit's frontend files, compressed once each per server start
ASSET_GZIP_MINIMUM_BYTES = 1024
ASSET_GZIP_CACHE_BYTES = 64 * 1024 * 1024  # the whole bundle is ~7 MB compressed; a visit uses ~1 MB
ASPECT_PRESETS = {  # width x height, multiples of 16, at most 4 MP
    "1:1 square": (1024, 1024),
    "4:3 landscape": (1152, 864),
    "3:4 portrait": (864, 1152),
    "3:2 landscape": (1216, 832),
    "2:3 portrait": (832, 1216),
    "16:9 wide": (1344, 768),
    "9:16 tall": (768, 1344),
    "21:9 cinema": (1536, 640),
}
DOUBLE_SUBMIT_WINDOW_S = 3.0  # the same request from the same session within this is a double click
EMULATOR_PORT_ENV = "FLUX_LAB_EMULATOR_PORT"  # the embedded emulator's preferred port
EMULATOR_LATENCY_ENV = "FLUX_LAB_EMULATOR_LATENCY"  # its seconds of emulated inference

# --- sweeps ----------------------------------------------------------------------------
SWEEP_MAX_AXES = 3
SWEEP_CELL_CAP = 24  # above this many new images a sweep asks for confirmation
SWEEP_CAP_ENV = "FLUX_LAB_SWEEP_CAP"
ASSUMED_DURATION_S = 30.0  # FLUX.2 [max] takes ~26 s at p50; used until the ledger knows better
CONTACT_SHEET_MAX_PX = 4096  # the contact sheet's longer side, however large the grid
CONTACT_SHEET_CELL_PX = 256

# --- history ---------------------------------------------------------------------------
HISTORY_PAGE_SIZE = 60
HISTORY_COLUMNS = 6  # gallery cards a row, at most
HISTORY_CARD_MIN_PX = 160  # narrowest gallery card: a narrow screen shows fewer a row
HISTORY_COUNT_AHEAD = 1_000  # History counts matches this far past a page's first run: "1,000+" beyond
INSIGHTS_SAMPLE = 5_000  # runs drawn for the charts

# --- the control plane's request history (protocol section 6b) --------------------------
CONTROL_URL = "https://api.spotprod.segmind.com"  # Segmind's request history; other servers: the base URL
CONTROL_URL_ENV = "SEGMIND_CONTROL_URL"
HISTORY_PER_PAGE = 100  # rows asked for a page: the most the history serves
HISTORY_PER_PAGE_MAX = 100  # the history's own bound on per_page (1..100)
HISTORY_WINDOW_DAYS = 7  # the history's default date window, from_date..to_date
HISTORY_MAX_WINDOW_DAYS = 31  # the widest date window the history accepts
SETTLE_GRACE_S = 600.0  # a lost submit with no record this long after it began was never taken
SETTLE_GRACE_ENV = "FLUX_LAB_SETTLE_GRACE_S"
SETTLE_5XX_WAIT_S = 20.0  # after a 5xx on submit, how long the history gets to show the job
SETTLE_5XX_WAIT_ENV = "FLUX_LAB_SETTLE_5XX_WAIT_S"
OUTPUT_RETENTION_S = 7 * 86400.0  # output files live 7 days; a request record, of any age, longer
EMULATOR_HISTORY_LAG_S = 0.0  # how long after its creation a request shows in the emulator's history

# --- settling runs with Segmind's request history (flux_core/settle.py) -------------------
SETTLE_CLOCK_SKEW_S = 120.0  # a request record may carry a time this much before our submit began
SETTLE_MAX_PAGES = 5  # history pages read to find one submit (newest first, 100 a page)
SETTLE_LOOKUP_FIRST_S = 1.0  # first pause between two looks at the history; doubles each time
SETTLE_LOOKUP_MAX_S = 60.0  # the longest pause between two looks at the history
COST_CHECK_EVERY_S = 300.0  # a finished run without its real cost is looked up at most this often
COST_CHECK_FOR_S = 86400.0  # ... for this long after it finished; then its cost stays unknown
IMPORT_DAYS = 7  # `flux-lab import-history` and History's import look back this many days
IMPORT_MAX_PAGES = 50  # history pages read per date window on an import
IMPORTED = "imported"  # a run's origin when it was made elsewhere and brought in from the history
PRICING_SAMPLE = 200  # recent runs with a real cost that the estimate is learned from
COST_CHECK_BATCH = 200  # finished runs whose real cost one pass looks up (one history read)
COST_MAX_PAGES = 3  # history pages one pass reads for them
IMPORT_MAX_DAYS = 365  # the furthest back an import may look

# --- Compose: images per Generate, the session's feed, presets, code snippets (issue 14) ---
COMPOSE_MAX_IMAGES = 4  # images one Generate makes at most (N runs, N seeds)
COMPOSE_FEED_MAX = 24  # runs of this browser session the feed keeps, newest first
COMPOSE_FEED_COLUMNS = 4  # feed thumbnails a row
COMPOSE_IMAGE_MAX_PX = 520  # the main result's longer side on screen: beside the form without a scroll
PRESET_NAME_MAX_CHARS = 80
SNIPPET_POLL_S = 1.0  # the poll interval the copied code waits between status looks
SNIPPET_TIMEOUT_S = 600.0  # ... and how long it waits for a result at most

# --- Compare: the sweep viewer (issue 14, COMPARE) ---------------------------------------
SWEEP_NAME_MAX_CHARS = 80  # a sweep's name, trimmed, at most this long
SWEEP_LABEL_MAX_CHARS = 32  # a prompt variant's label (the words that differ), shortened to this
SWEEP_GRID_CELL_MIN_PX = 150  # the narrowest grid cell: on a phone the grid scrolls sideways
SWEEP_GRID_CELL_MAX_PX = 480  # the widest: columns share the page's width up to this
SWEEP_GRID_FIT_MIN_PX = 96  # "Fit the screen" shrinks cells to this at most, then the page scrolls
SWEEP_CARDS = 8  # saved sweeps shown as cards on the plan page
SWEEP_CARD_PX = 150  # a saved sweep card's thumbnail width
IMAGE_CACHE_CONTROL = "public, max-age=31536000, immutable"  # full images, named by their hash too
AB_MAX_PX = 720  # the A/B view's width at most (it shrinks with the page)
AB_FLICKER_MS = 500  # A/B flicker: how long each picture shows
AB_DIFF_GAIN = 4  # A/B difference view: |A-B| multiplied by this, so small changes show
AB_DIFF_MAX_PX = 1024  # A/B difference view: computed at most this many pixels on the longer side

# --- organising work: boards, bulk curation, History's cards (issue 14, ORGANISE) -----------
BOARD_NAME_MAX_CHARS = 60  # a board's name, trimmed
# --- prompt lineage (issue 17: flux_core/ledger/lineage.py) ------------------------------------
VERSION_NAME_MAX_CHARS = 60  # a version's name ("v3 – tighter headline"), trimmed
LINEAGE_PROMPT_WORDS = 8  # a node of a lineage tree shows the first this many words of its prompt
LINEAGE_SHORT_ID = 8  # ... and, without a version name, the last this many characters of its id
BOARD_OWNER = ""  # whose boards: nobody's until people sign in (issue 15)
TAG_MAX_CHARS = 40  # a tag added to many runs at once
CARD_PROMPT_WORDS = 12  # a gallery card's first line: the prompt's first words (then an ellipsis)

# --- spend caps (issue 15, item 5: flux_core/caps.py) --------------------------------------
# The price table: each model's price in USD, per output megapixel and per reference image, until the
# ledger holds real costs of that model (learned prices replace them, per model: pricing.learn).
# Segmind bills, so its figures come first. [max]: neither the protocol notes nor Segmind's API page
# state a price; the notes' example cost is $0.08 an image, so, conservatively, $0.08 per output
# megapixel, above BFL's list price ($0.07 for the first megapixel, $0.03 for each further one).
# [pro] and [flex]: Segmind's pages show about $0.073 and $0.172 a default (1024 x 1024) image; taken
# per megapixel (BFL lists [pro] at $0.03 and $0.015, below what Segmind asks). Each reference image
# counts as one more megapixel (BFL bills references by their megapixels). The env overrides below
# set [max]'s; the others follow the table. The emulator charges by the same table's proportions.
PRICES_USD = {  # model: (per output megapixel, per reference image)
    "flux-2-max": (0.08, 0.08),
    "flux-2-pro": (0.073, 0.073),
    "flux-2-flex": (0.172, 0.172),
}
PRICE_PER_MP_USD, PRICE_PER_REFERENCE_USD = PRICES_USD[MODEL_SLUG]
PRICE_PER_MP_ENV = "FLUX_LAB_PRICE_PER_MP_USD"
PRICE_PER_REFERENCE_ENV = "FLUX_LAB_PRICE_PER_REFERENCE_USD"
CAP_PERSON_DAY_ENV = "FLUX_LAB_CAP_PERSON_DAY_USD"  # what one person may spend a UTC day; unset: no cap
CAP_TEAM_DAY_ENV = "FLUX_LAB_CAP_TEAM_DAY_USD"  # what everyone together may spend a UTC day
CAP_TEAM_MONTH_ENV = "FLUX_LAB_CAP_TEAM_MONTH_USD"  # ... a calendar month (UTC)

# --- sign-in (flux_ui/signin.py, flux_ui/serving.py) ----------------------------------------
# With sign-in, a stored image or thumbnail may be kept by the signed-in person's browser only, never
# by a shared cache on the way; a refusal (401) is never kept at all.
SIGNED_IN_MEDIA_CACHE_CONTROL = "private, max-age=31536000, immutable"
REFUSED_CACHE_CONTROL = "no-store"

# --- automatic image checks (flux_core/checks) ------------------------------------------------
CHECKS_ENV = "FLUX_LAB_CHECKS"  # "0" turns the app's background checks off (`flux-lab check` still works)
CHECK_SCAN_S = 30.0  # the background checker looks for unchecked images (other processes' too) this often
CHECK_BATCH = 20  # images it takes from the ledger at a time
CHECK_STOP_WAIT_S = 30.0  # a stopping workbench (wait=True) lets the image in hand finish this long at most
CHECK_YIELD_S = (
    0.5  # the checker waits while runs are in flight (woken when the last lands); looks again this often
)
CHECK_NICE = 10  # the checker thread's niceness: the CPU goes to the runs first (Linux: per thread)
# --- automatic checks on every image (issue 16: flux_core/checks/) --------------------------
# The text check (checks/text.py): OCR, then each expected string compared on a normal form
# (case-folded, letters and digits only).
TEXT_OCR_MAX_PX = 1600  # an image's longer side is scaled down to this before the OCR reads it
TEXT_OCR_THREADS = 1  # onnxruntime intra-op threads: a check never takes both cores
TEXT_WRAP_MAX_LINES = 3  # a string may wrap over this many consecutive lines read
TEXT_WRAP_LOOKAHEAD = 4  # ... or be continued by any of the next this many lines (a column beside it)
TEXT_SHORT_CHARS = 6  # a normal form this long or shorter is a short string ("SAME")
TEXT_MISSPELT_MIN_RATIO_SHORT = 70.0  # rapidfuzz partial ratio: short string, one letter wrong (75)
TEXT_MISSPELT_MIN_RATIO = 80.0  # ... a longer one: below this, what was read is not it at all
# The palette check (checks/palette.py): dominant colours of a downscaled copy, CIEDE2000.
PALETTE_SAMPLE_PX = 128  # the copy quantised: its longer side
PALETTE_COLOURS = 8  # dominant colours looked for
PALETTE_MIN_SHARE = 0.02  # a dominant colour covers at least this share of the pixels
PALETTE_MATCH_DELTA_E = 10.0  # an expected colour is there when a dominant one is this close
PALETTE_DELTA_E_CEILING = 30.0  # a colour's closeness falls from 1 (delta E 0) to 0 here
# Perceptual hashes (checks/similarity.py): 64-bit phash, distances in bits.
NEAR_DUPLICATE_BITS = 6  # two images this close are near-duplicates (seed diversity)
SMALL_DRIFT_BITS = 10  # the determinism probe: a rerun this close is a small drift
SAME_IMAGE_MEAN_ABS_DIFF = 1.0  # ... phash distance 0 and this mean |a-b| (0..255) is the same image
DIVERSITY_FULL_BITS = 32  # a variant's diversity is its mean pairwise hash distance over this, capped at 1
CHECK_RANKS = ("none", "text", "palette")  # Compare's "Colour by / rank by check" choices

# --- review: comments and verdicts (issue 17: flux_core/ledger/reviews.py) -----------------
COMMENT_MAX_CHARS = 4000  # a comment's words, trimmed
COMMENT_INDENT_MAX = 4  # a thread indents replies at most this many levels (deeper replies line up)

# --- the presenter view (issue 17): one image at a time for the room --------------------------
PRESENT_MAX_RUNS = 200  # a selection or a search shows at most this many images, in order
PRESENT_ESC_GRACE_MS = 600  # an Esc this soon after leaving full screen leaves it only, not the page
# --- the report that travels (issue 17, item 2: flux_core/report.py) -----------------------
REPORT_IMAGE_PX = 768  # an inlined image's longer side: a 12-cell sweep's report stays a few MB
REPORT_IMAGE_QUALITY = 82  # ... encoded as JPEG at this quality (the ZIP keeps the full-size files)

# --- structured prompts (issue 20): flux_core/structured.py ------------------------------------
FIELD_LOOKUP_CACHE = 4096  # (prompt, path) pairs whose field value History's field filter keeps read

# --- the seed hunt (issue 20, item 3: flux_core/hunt.py) -------------------------------------
HUNT_BATCH = 4  # seeds a hunt keeps in flight at once, at most (fewer under a runner's cap or budget)
HUNT_REQUESTS_PER_JOB = 3  # a job's submit, look and result: a budget of N a minute carries N/3 jobs
HUNT_IMAGES_DEFAULT = SWEEP_CELL_CAP  # a hunt given no --max-images / --max-usd makes at most this many
HUNT_MAX_IMAGES = 1_000  # ... and however it is asked, at most this many
HUNT_MAX_SEEDS = 10_000  # seeds one hunt may list (1-10000)
HUNT_MAX_HITS = 100
HUNT_PALETTE_MIN = 0.8  # "palette" without a score: a palette score of at least this is a pass
HUNT_LOOK_S = 1.0  # a hunt whose runs another process drives looks at the ledger this often
