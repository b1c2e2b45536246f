"""Seed the courier registry: codes, names, customer-service phones and waybill patterns."""

from django.db import migrations

COURIERS = [
    # code, Chinese, English, phone, pattern, example, kuaidi100, kdniao, tracking, batch, rps
    ("ZTO", "中通快递", "ZTO Express", "95311", r"7[3-8]\d{12}", "73100000000000",
     "zhongtong", "ZTO", "push", 1, 10),
    ("YTO", "圆通速递", "YTO Express", "95554", r"YT\d{13}", "YT0000000000000",
     "yuantong", "YTO", "push", 1, 10),
    ("YUNDA", "韵达快递", "Yunda Express", "95546", r"(?:3\d|4\d)\d{11}", "4312345678901",
     "yunda", "YD", "push", 1, 10),
    ("STO", "申通快递", "STO Express", "95543", r"77\d{13}", "773000000000000",
     "shentong", "STO", "push", 1, 10),
    ("SF", "顺丰速运", "SF Express", "95338", r"SF\d{12,13}", "SF0000000000000",
     "shunfeng", "SF", "push", 10, 20),
    ("JD", "京东物流", "JD Logistics", "950616", r"JD[A-Z]{0,2}\d{11,13}", "JDVA00000000000",
     "jd", "JD", "poll", 1, 10),
    ("EMS", "中国邮政EMS", "China Post EMS", "11183", r"(?:1\d{12}|9\d{12}|[A-Z]{2}\d{9}[A-Z]{2})",
     "1100000000000", "ems", "EMS", "poll", 1, 5),
    ("JT", "极兔速递", "J&T Express", "956025", r"JT\d{13}", "JT0000000000000",
     "jtexpress", "JTSD", "push", 1, 10),
]


def seed(apps, schema_editor):
    Courier = apps.get_model("couriers", "Courier")
    for order, row in enumerate(COURIERS):
        code, zh, en, phone, pattern, example, k100, kdn, mode, batch, rps = row
        Courier.objects.update_or_create(
            code=code,
            defaults={
                "name_zh": zh,
                "name_en": en,
                "service_phone": phone,
                "waybill_pattern": pattern,
                "waybill_example": example,
                "kuaidi100_code": k100,
                "kdniao_code": kdn,
                "tracking_mode": mode,
                "batch_size": batch,
                "requests_per_second": rps,
                "sort_order": order,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("couriers", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
