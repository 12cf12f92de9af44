"""Alembic environment: runs migrations online against `sqlalchemy.url`."""
from alembic import context

from hinkskalle.models import Base, get_engine

config = context.config


def run_migrations_online():
    engine = get_engine({"sqlalchemy.url": config.get_main_option("sqlalchemy.url")})
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite",
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
