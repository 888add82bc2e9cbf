"""The installation's product catalogue, and each product's picture.

A price change applies to orders created after it (an order keeps its lines'
unit prices); machines selling the product get a new ``desired`` at once.
Pictures are PNG, JPEG or WebP, recognised by their first bytes (never by
what the upload claims), size-limited, and kept in the database so every
server process can serve them.
"""

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import InvalidRequest, ProductNotFound, SkuTaken
from api.security.ids import new_id
from api.services import outgoing, planogram
from api.services.context import Context
from api.services.machines import check_price
from schema.models import PRODUCT_NAME_MAX, Machine, MachineSlot, Product, ProductImage

IMAGE_MAX_BYTES = 256 * 1024
SKU_MAX = 64


def image_type(data: bytes) -> str | None:
    """The picture's type from its magic bytes; None when it is none of ours."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass(frozen=True)
class ProductFields:
    name: str
    price_amount: int
    sku: str | None = None
    active: bool = True
    currency: str = "INR"

    def validate(self) -> None:
        if not 1 <= len(self.name.strip()) <= PRODUCT_NAME_MAX:
            raise InvalidRequest(f"name must be 1 to {PRODUCT_NAME_MAX} characters")
        if not planogram.printable_name(self.name):
            raise InvalidRequest(
                "name: letters, digits, spaces and punctuation only (no emoji or control "
                "characters: machines' displays cannot show them)"
            )
        if self.sku is not None and not 1 <= len(self.sku) <= SKU_MAX:
            raise InvalidRequest(f"sku must be 1 to {SKU_MAX} characters")
        if self.currency != "INR":
            raise InvalidRequest("only INR is supported")
        check_price(self.price_amount)


def product_json(product: Product) -> dict[str, Any]:
    return {
        "id": product.id,
        "sku": product.sku,
        "name": product.name,
        "image_url": planogram.image_url(product),
        "price": {"amount": product.price_amount, "currency": product.currency},
        "active": product.active,
    }


class Catalogue:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def list(self) -> list[dict[str, Any]]:
        async with self.ctx.db() as s:
            products = (await s.scalars(select(Product).order_by(Product.name))).all()
        return [product_json(p) for p in products]

    async def get(self, product_id: str) -> dict[str, Any]:
        async with self.ctx.db() as s:
            return product_json(await _product(s, product_id))

    async def create(self, fields: ProductFields) -> dict[str, Any]:
        fields.validate()
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            await _sku_free(s, fields.sku, None)
            product = Product(
                id=new_id("prd"),
                sku=fields.sku,
                name=fields.name.strip(),
                price_amount=fields.price_amount,
                currency=fields.currency,
                active=fields.active,
                created_at=now,
                updated_at=now,
            )
            s.add(product)
            await s.flush()
            return product_json(product)

    async def update(self, product_id: str, fields: ProductFields) -> dict[str, Any]:
        """Change a product; machines selling it are told (their slots' names and prices)."""
        fields.validate()
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            product = await _product(s, product_id, lock=True)
            await _sku_free(s, fields.sku, product.id)
            product.sku = fields.sku
            product.name = fields.name.strip()
            product.price_amount = fields.price_amount
            product.active = fields.active
            product.updated_at = now
            await s.flush()
            await machines_selling_changed(s, product.id, now)
            return product_json(product)

    async def set_image(self, product_id: str, data: bytes) -> dict[str, Any]:
        if len(data) > IMAGE_MAX_BYTES:
            raise InvalidRequest(f"an image may be at most {IMAGE_MAX_BYTES // 1024} KiB")
        kind = image_type(data)
        if kind is None:
            raise InvalidRequest("an image must be PNG, JPEG or WebP")
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            product = await _product(s, product_id, lock=True)
            image = await s.get(ProductImage, product.id)
            if image is None:
                s.add(
                    ProductImage(
                        product_id=product.id, content_type=kind, data=data, updated_at=now
                    )
                )
            else:
                image.content_type, image.data, image.updated_at = kind, data, now
            product.image_tag = hashlib.sha256(data).hexdigest()[:16]
            product.updated_at = now
            await s.flush()
            await machines_selling_changed(s, product.id, now)  # the new picture's URL
            return product_json(product)

    async def image(self, product_id: str) -> tuple[str, bytes]:
        async with self.ctx.db() as s:
            image = await s.get(ProductImage, product_id)
        if image is None:
            raise ProductNotFound("this product has no image")
        return image.content_type, image.data


async def _product(s: AsyncSession, product_id: str, *, lock: bool = False) -> Product:
    product = await s.get(Product, product_id, with_for_update=lock)
    if product is None:
        raise ProductNotFound(f"no product {product_id}")
    return product


async def _sku_free(s: AsyncSession, sku: str | None, own: str | None) -> None:
    if sku is None:
        return
    holder = await s.scalar(select(Product.id).where(Product.sku == sku))
    if holder is not None and holder != own:
        raise SkuTaken(f"sku {sku} belongs to another product")


async def machines_selling_changed(s: AsyncSession, product_id: str, now: int) -> None:
    """Every machine with a slot of this product: new mirror, new ``desired``."""
    ids = (
        await s.scalars(
            select(MachineSlot.machine_id).where(MachineSlot.product_id == product_id).distinct()
        )
    ).all()
    for machine_id in sorted(ids):
        machine = await s.get(Machine, machine_id, with_for_update=True)
        assert machine is not None
        planogram.mirror(machine, await planogram.rows(s, machine.id))
        await outgoing.machine_changed(s, machine, now)
