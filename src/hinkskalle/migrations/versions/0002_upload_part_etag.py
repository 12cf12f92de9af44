"""upload_part.sha256 becomes upload_part.etag

A part's ETag is its sha256 only when the client announced one; parts sent without one
(multipart uploads now tell clients not to hash parts) get an opaque token.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 10:40:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('upload_part', schema=None) as batch_op:
        batch_op.alter_column('sha256', new_column_name='etag', existing_type=sa.String(length=64),
                              existing_nullable=True)


def downgrade():
    with op.batch_alter_table('upload_part', schema=None) as batch_op:
        batch_op.alter_column('etag', new_column_name='sha256', existing_type=sa.String(length=64),
                              existing_nullable=True)
