package spkbuild

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
)

// The icon is one drawing, rendered at every size DSM asks for: a white anvil with an orange
// spark on a blue rounded square, in the flat style of DSM 7's own package icons. Shapes are in
// unit coordinates (0..1, y down) and rendered with 8x8 supersampling, so the 16-pixel icon
// stays a recognisable anvil.

// IconSizes are the sizes of the app icons (ui/images/icon_<n>.png); the config's "{0}" takes
// each of them (guide: Application Config).
var IconSizes = []int{16, 24, 32, 48, 64, 72, 256}

type pt struct{ x, y float64 }

var (
	bgTop    = [3]float64{0x33, 0x8E, 0xF2} // DSM-like blue
	bgBottom = [3]float64{0x17, 0x5B, 0xC4}
	anvilCol = [3]float64{0xF7, 0xF9, 0xFC}
	shadeCol = [3]float64{0xC9, 0xD6, 0xE6} // the anvil's underside
	sparkCol = [3]float64{0xFC, 0x6D, 0x26} // GitLab's orange

	// The anvil: horn on the left, flat face, narrow waist, wide foot.
	anvil = []pt{
		{0.11, 0.375}, {0.20, 0.350}, {0.29, 0.340}, {0.87, 0.340}, {0.87, 0.470},
		{0.73, 0.470}, {0.64, 0.575}, {0.64, 0.655}, {0.78, 0.730}, {0.78, 0.800},
		{0.26, 0.800}, {0.26, 0.730}, {0.40, 0.655}, {0.40, 0.575}, {0.33, 0.480},
		{0.25, 0.455}, {0.18, 0.420},
	}
	// The face's lower band, a shade darker, gives the anvil some depth.
	anvilShade = []pt{{0.29, 0.435}, {0.87, 0.435}, {0.87, 0.470}, {0.73, 0.470}, {0.70, 0.505}, {0.36, 0.505}, {0.33, 0.480}}
)

// spark is a four-pointed star above the anvil's face, where the hammer strikes.
func spark() []pt {
	const cx, cy, outer, inner = 0.60, 0.175, 0.13, 0.045
	var p []pt
	for i := range 8 {
		r := outer
		if i%2 == 1 {
			r = inner
		}
		a := float64(i)*math.Pi/4 - math.Pi/2
		p = append(p, pt{cx + r*math.Cos(a), cy + r*math.Sin(a)})
	}
	return p
}

// inPolygon is the even-odd rule.
func inPolygon(p pt, poly []pt) bool {
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		a, b := poly[i], poly[j]
		if (a.y > p.y) != (b.y > p.y) && p.x < (b.x-a.x)*(p.y-a.y)/(b.y-a.y)+a.x {
			in = !in
		}
	}
	return in
}

// inRoundedSquare is the background tile, with DSM's generous corner radius.
func inRoundedSquare(p pt) bool {
	const m, r = 0.04, 0.20 // margin, corner radius
	lo, hi := m+r, 1-m-r
	if p.x < m || p.x > 1-m || p.y < m || p.y > 1-m {
		return false
	}
	cx := math.Max(lo, math.Min(hi, p.x))
	cy := math.Max(lo, math.Min(hi, p.y))
	return (p.x-cx)*(p.x-cx)+(p.y-cy)*(p.y-cy) <= r*r
}

// Icon draws the package icon at size x size pixels.
func Icon(size int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	star := spark()
	const ss = 8 // samples per axis
	for y := range size {
		for x := range size {
			var r, g, b, a float64
			for sy := range ss {
				for sx := range ss {
					p := pt{(float64(x) + (float64(sx)+0.5)/ss) / float64(size), (float64(y) + (float64(sy)+0.5)/ss) / float64(size)}
					if !inRoundedSquare(p) {
						continue
					}
					var c [3]float64
					switch {
					case inPolygon(p, star):
						c = sparkCol
					case inPolygon(p, anvilShade):
						c = shadeCol
					case inPolygon(p, anvil):
						c = anvilCol
					default:
						for i := range c {
							c[i] = bgTop[i] + (bgBottom[i]-bgTop[i])*p.y
						}
					}
					r, g, b, a = r+c[0], g+c[1], b+c[2], a+1
				}
			}
			if a == 0 {
				continue
			}
			// Average the colour over the covered samples; coverage is the alpha.
			img.SetNRGBA(x, y, color.NRGBA{
				R: uint8(math.Round(r / a)), G: uint8(math.Round(g / a)), B: uint8(math.Round(b / a)),
				A: uint8(math.Round(255 * a / ss / ss)),
			})
		}
	}
	return img
}

// IconPNG is Icon encoded as PNG.
func IconPNG(size int) ([]byte, error) {
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, Icon(size)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
