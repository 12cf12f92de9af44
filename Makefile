# Two commands on a fresh machine: `make run` starts the registry, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INI ?= development.ini

# The first-party plugins are installed too: their tests belong to `make test`, and they
# stay inactive until configured.
PLUGINS := $(dir $(wildcard plugins/*/pyproject.toml))

$(BIN)/hinkskalle: setup.cfg pyproject.toml $(wildcard plugins/*/setup.cfg)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,postgres,mysql]' $(addprefix -e ,$(PLUGINS))
	@touch $@

.PHONY: install run test bench migration settings-doc
install: $(BIN)/hinkskalle

run: install
	$(BIN)/hinkskalle -c $(INI) init
	$(BIN)/pserve $(INI)

# Extra pytest arguments: make test ARGS="-k oci"; another database: HINKSKALLE_TEST_DATABASE_URL=...
test: install
	$(BIN)/pytest $(ARGS)

bench: install
	$(BIN)/python benchmarks/run.py

# A new migration from what the models have and the migrations do not: make migration MESSAGE="..."
# (then read it through: renames come out as a drop and an add).
migration: install
	rm -f /tmp/hinkskalle-migration.db
	$(BIN)/python -c "from alembic import command; from hinkskalle.migrations import alembic_config, upgrade; \
	url = 'sqlite:////tmp/hinkskalle-migration.db'; upgrade(url); \
	command.revision(alembic_config(url), message='$(MESSAGE)', autogenerate=True)"

# Regenerate the README's configuration reference from the settings table in config.py.
settings-doc: install
	$(BIN)/python -c "import re, pathlib; from hinkskalle.config import markdown_table; \
	p = pathlib.Path('README.md'); t = p.read_text(); \
	p.write_text(re.sub(r'(<!-- settings:start.*?-->\n).*?(<!-- settings:end -->)', \
	lambda m: m.group(1) + markdown_table() + m.group(2), t, flags=re.S))"
