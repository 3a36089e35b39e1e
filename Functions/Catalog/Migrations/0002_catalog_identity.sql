-- The identity of this catalog (DESIGN §8.2): created once, written on every server it makes (a label, a data-folder
-- marker), so only servers this catalog made can ever be its orphans. A new, empty or foreign catalog has another id.
CREATE TABLE catalog_identity (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    singleton   boolean NOT NULL DEFAULT true UNIQUE CHECK (singleton)
);

INSERT INTO catalog_identity DEFAULT VALUES;

-- Servers of this catalog that no pool knows: stopped when found, deleted only after Cleanup:OrphanGrace.
CREATE TABLE orphan_servers (
    driver       text NOT NULL,
    name         text NOT NULL,
    resource_id  text,
    stopped_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (driver, name)
);
