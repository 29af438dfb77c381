package location

import (
	"fmt"
	"strconv"
	"strings"
)

// Point is a WGS84 position in decimal degrees.
type Point struct{ Lat, Lon float64 }

// Area is the municipality's area: a polygon of at least three corners
// (WGS84), or a bounding box when given two corners.
type Area []Point

// DefaultArea is the demo municipality's (Uppsala) bounding box, about
// 59.6..60.2 N, 17.2..18.2 E.
const DefaultArea = "59.6,17.2;60.2,18.2"

// maxCorners bounds a configured polygon.
const maxCorners = 1000

// ParseArea reads "lat,lon;lat,lon;..." (the GATEWAY_AREA setting): two
// corners are a bounding box, three or more a polygon.
func ParseArea(s string) (Area, error) {
	var a Area
	for _, part := range strings.Split(strings.TrimSpace(s), ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		latS, lonS, ok := strings.Cut(part, ",")
		if !ok {
			return nil, fmt.Errorf("area corner %q: want lat,lon", part)
		}
		p, ok := parsePoint(latS, lonS)
		if !ok {
			return nil, fmt.Errorf("area corner %q: want latitude -90..90 and longitude -180..180 in decimal degrees", part)
		}
		a = append(a, p)
		if len(a) > maxCorners {
			return nil, fmt.Errorf("area: more than %d corners", maxCorners)
		}
	}
	switch {
	case len(a) < 2:
		return nil, fmt.Errorf("area: want two corners (a box) or at least three (a polygon), got %d", len(a))
	case len(a) == 2:
		lo := Point{min(a[0].Lat, a[1].Lat), min(a[0].Lon, a[1].Lon)}
		hi := Point{max(a[0].Lat, a[1].Lat), max(a[0].Lon, a[1].Lon)}
		if lo.Lat == hi.Lat || lo.Lon == hi.Lon {
			return nil, fmt.Errorf("area: the box has no extent")
		}
		a = Area{lo, {lo.Lat, hi.Lon}, hi, {hi.Lat, lo.Lon}}
	}
	return a, nil
}

// parsePoint reads decimal degrees (a comma may be the decimal point in
// a form, but not here: the caller splits on it).
func parsePoint(latS, lonS string) (Point, bool) {
	lat, err1 := strconv.ParseFloat(strings.TrimSpace(latS), 64)
	lon, err2 := strconv.ParseFloat(strings.TrimSpace(lonS), 64)
	if err1 != nil || err2 != nil || lat != lat || lon != lon || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return Point{}, false
	}
	return Point{lat, lon}, true
}

// Contains reports whether p lies inside the area (even-odd rule; a point
// on an edge may fall either way). Municipal areas are far from the poles
// and the antimeridian, where treating degrees as plane coordinates fails.
func (a Area) Contains(p Point) bool {
	in := false
	for i, j := 0, len(a)-1; i < len(a); j, i = i, i+1 {
		pi, pj := a[i], a[j]
		if (pi.Lat > p.Lat) != (pj.Lat > p.Lat) &&
			p.Lon < (pj.Lon-pi.Lon)*(p.Lat-pi.Lat)/(pj.Lat-pi.Lat)+pi.Lon {
			in = !in
		}
	}
	return in
}
