"""CRS written with their EPSG code where the definition matches one, and only then."""

from __future__ import annotations

import pytest
from rasterio.crs import CRS

from geoseg.io.crs import with_authority, wkt_with_authority

NC_LCC = (
    "+proj=lcc +lat_1=36.16666666666666 +lat_2=34.33333333333334 +lat_0=33.75 +lon_0=-79 "
    "+x_0=609601.22 +y_0=0 +ellps=GRS80 +units=m"
)


def test_unnamed_definition_gets_its_code(data_dir):
    import rasterio

    with rasterio.open(data_dir / "nc" / "lsat7_2000_10.tif") as src:
        assert "unnamed" in src.crs.to_wkt()
        got = with_authority(src.crs)
    assert got.to_authority() == ("EPSG", "32119") and "NAD83 / North Carolina" in got.to_wkt()
    assert 'AUTHORITY["EPSG","32119"]' in wkt_with_authority(src.crs.to_wkt())


@pytest.mark.parametrize(
    "definition",
    [
        NC_LCC + " +towgs84=0,0,0",  # the NC scene's definition: NAD83 in all but name
        "+proj=utm +zone=12 +datum=WGS84 +units=m",
    ],
)
def test_equivalent_definitions_get_a_code(definition):
    assert with_authority(CRS.from_proj4(definition)).to_authority()[0] == "EPSG"


@pytest.mark.parametrize(
    "definition",
    [
        NC_LCC + " +towgs84=100,0,0",  # another datum: 100 m away from EPSG:32119
        NC_LCC.replace("+x_0=609601.22", "+x_0=609600"),  # another false easting
        "+proj=aea +lat_0=23 +lon_0=-96 +lat_1=29.5 +lat_2=45.5 +datum=WGS84 +units=m",
    ],
)
def test_near_misses_stay_as_written(definition):
    crs = CRS.from_proj4(definition)
    assert with_authority(crs).to_wkt() == crs.to_wkt()


def test_codes_and_nothing_pass_through():
    assert with_authority(None) is None and wkt_with_authority(None) is None
    assert with_authority("EPSG:26914").to_epsg() == 26914
    assert wkt_with_authority("EPSG:32612") == "EPSG:32612"  # already a code: as given
