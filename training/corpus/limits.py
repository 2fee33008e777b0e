"""How much qism reads from one source: one place, so that a test (or a caller) may lower the limits
for every reader at once."""

#: The most a zip or gzip archive may unpack to, and the most one article file, line or CSV field
#: may hold (a bomb or a file that is not an article stops with a message instead of filling memory).
MAX_ARCHIVE_BYTES = 4 << 30
MAX_FILE_BYTES = 1 << 30
