-- Which node holds each device's TCP connection (issue 15). A node that authenticates a
-- device takes its session over: `epoch` goes up by one, and is the fencing token that tells
-- the node that held it before to close its socket and leave the device's presence alone.
-- One row per device that ever connected over TCP; it is not removed when the connection ends.
CREATE TABLE device_sessions (
    sn TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    claimed_at BIGINT NOT NULL
);
