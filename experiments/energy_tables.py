"""Cross-check the cited energy tables (`arch_configs/energy/`) against hwcomponents.

hwcomponents is the Accelergy project's component library (MACs from the Aladdin library, SRAMs
through CACTI, DRAM by type). It needs Python >= 3.12, so it is not a dependency of ttvsim; run
this script from its own environment:

    ~/.pyenv/versions/3.12.1/bin/python -m venv /tmp/hwc
    /tmp/hwc/bin/pip install hwcomponents hwcomponents-library hwcomponents-cacti hwcomponents-neurosim
    /tmp/hwc/bin/python experiments/energy_tables.py

Verdict (hwcomponents 1.0.114, -library 1.0.58, -cacti 1.0.40, -neurosim 1.0.43, 2025):
- It installs, but does not run cleanly out of the box: `hwcomponents_library` imports
  `hwcomponents_neurosim` without declaring it (ModuleNotFoundError until installed by hand);
  the wheel's prebuilt CACTI binary needs GLIBC 2.38 ("version `GLIBC_2.38' not found" on
  Debian 12) and its shipped object files fail to link (`undefined reference to
  __isoc23_fscanf`) until `rm obj_dbg/*.o && make` in `site-packages/hwcomponents_cacti/cacti`;
  `SRAM(width=, depth=)` fails (`TypeError` in a size assertion) — pass `size=` instead.
- CACTI covers 22-180 nm; below that hwcomponents extrapolates. Its DRAM table
  (LPDDR4 8, DDR3 70, HBM2 6.25, HBM3 4.05 pJ/bit) cites Wikipedia and market-report pages.
- Choice: the shipped tables stay the cited built-in ones (Horowitz ISSCC 2014 scaled by
  Stillmaker & Baas 2017, `sim/energy/derive.py`); hwcomponents is a cross-check only, run
  by hand, and its numbers are recorded below next to the cited ones.

Recorded run (pJ; "cited" = the shipped tables' rule, "hwc" = hwcomponents):
    node  quantity                cited pJ    hwc pJ hwc/cited
      45  int8_mac                     0.3    1.1537      3.85
      45  sram_8kb_read_64b           10.0     6.137      0.61
      45  sram_32kb_read_64b          20.0   17.0418      0.85
      45  sram_1024kb_read_64b       100.0   93.5192      0.94
      28  int8_mac                  0.1596    0.5921      3.71
      28  sram_8kb_read_64b         5.3186    2.7021      0.51
      28  sram_32kb_read_64b       10.6371    6.4688      0.61
      28  sram_1024kb_read_64b     53.1857   40.6038      0.76
      16  int8_mac                  0.0679    0.2002      2.95
      16  sram_8kb_read_64b          2.263    1.3562       0.6
      16  sram_32kb_read_64b        4.5259    3.2291      0.71
      16  sram_1024kb_read_64b     22.6297   20.0129      0.88
       7  int8_mac                  0.0371    0.1088      2.93
       7  sram_8kb_read_64b         1.2371     0.897      0.73
       7  sram_32kb_read_64b        2.4742    2.1359      0.86
       7  sram_1024kb_read_64b     12.3708   13.2373      1.07
       4  int8_mac                   0.026    0.0822      3.17
       4  sram_8kb_read_64b          0.866    0.6781      0.78
       4  sram_32kb_read_64b        1.7319    1.6146      0.93
       4  sram_1024kb_read_64b      8.6595   10.0064      1.16
    (writes: hwc/cited 0.54-0.87.) Summary: CACTI's 64-bit SRAM accesses are 0.5-1.2x the
    scaled Horowitz figures (closest for large arrays at 7/4 nm); Aladdin's int8 MAC is ~3-4x
    Horowitz's int8 mult + int32 add. The cited tables are kept; the gap is the uncertainty.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODES_NM = (45, 28, 16, 7, 4)
SRAM_KB = (8, 32, 1024)


def _derive():
    """`sim/energy/derive.py` loaded by path (it needs no third-party package)."""
    spec = importlib.util.spec_from_file_location("derive", ROOT / "sim" / "energy" / "derive.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hwcomponents_numbers(node_nm: float) -> dict[str, float]:
    """int8 MAC (8-bit multiplier + 32-bit adder) and 64-bit SRAM read/write at `node_nm`, pJ."""
    from hwcomponents_cacti import SRAM
    from hwcomponents_library import AladdinIntMAC

    tech = node_nm * 1e-9
    out = {"int8_mac": AladdinIntMAC(tech_node=tech, adder_width=32, multiplier_width=8).mac().energy * 1e12}
    for kb in SRAM_KB:
        sram = SRAM(tech_node=tech, width=64, size=kb * 1024 * 8)
        out[f"sram_{kb}kb_read_64b"] = sram.read().energy * 1e12
        out[f"sram_{kb}kb_write_64b"] = sram.write().energy * 1e12
    return out


def cited_numbers(node_nm: float) -> dict[str, float]:
    """The same quantities by the shipped tables' rule."""
    d = _derive()
    s = d.scale_factor(node_nm)
    h = d.HOROWITZ_45NM_PJ
    out = {"int8_mac": d.mac_45nm_pj("int8") * s}
    for kb, key in zip(SRAM_KB, ("sram_8kb_64b", "sram_32kb_64b", "sram_1mb_64b")):
        out[f"sram_{kb}kb_read_64b"] = h[key] * s
        out[f"sram_{kb}kb_write_64b"] = h[key] * s   # write = read: Horowitz gives one figure
    return out


def main() -> None:
    rows = []
    for node in NODES_NM:
        cited, hwc = cited_numbers(node), hwcomponents_numbers(node)
        for key in cited:
            rows.append({"node_nm": node, "quantity": key, "cited_pj": round(cited[key], 4),
                         "hwc_pj": round(hwc[key], 4), "hwc_over_cited": round(hwc[key] / cited[key], 2)})
    if "--json" in sys.argv:
        print(json.dumps(rows, indent=1))
        return
    print(f"{'node':>4}  {'quantity':<22}{'cited pJ':>10}{'hwc pJ':>10}{'hwc/cited':>10}")
    for r in rows:
        print(f"{r['node_nm']:>4}  {r['quantity']:<22}{r['cited_pj']:>10}{r['hwc_pj']:>10}{r['hwc_over_cited']:>10}")


if __name__ == "__main__":
    main()
