"""Prompt templates to start from (Compose offers them; the first is the seed page's own)."""

from __future__ import annotations

MAGAZINE_SHOOT = "technical_specs:\nmedium: Commercial magazine photography\nstyle: Clean, high-energy editorial\ncamera: Phase One XF, 80mm medium format lens\nlighting: Professional studio lighting, soft key light, even fill to eliminate harsh shadows\ntexture: Sharp, high-resolution digital, smooth skin texture\n\nsetting:\nlocation:\nname: Professional Photography Studio\nzone: Seamless cyclorama wall with geometric props\nbackground_elements:\n- Solid peach-orange seamless backdrop\n- Stacked orange and apricot-colored geometric cubes and rectangular pedestals\n- Minimalist, clean studio floor\nmagazine_layout:\nmasthead: 'Women's Health' in large light green serif typography at the top\nheadlines:\n- 'Spring forward: How to eat, travel and sweat'\n- '15 skincare habits beauty founders swear by'\n- 'Fake Views: Inside the scroll holes'\n- 'The Workout'\ncolor_palette: Triadic scheme of Forest Green, Vibrant Orange, and Pastel Green/White\n\nsubject:\ncharacter: Fit athletic woman, mid-20s\nappearance:\nhair: Long, wavy honey blonde hair with a side part, cascading over one shoulder\nskin: Healthy, glowing, athletic tan with natural skin texture\nmakeup: Dewy 'no-makeup' look, neutral lip balm, groomed eyebrows\nattire:\ntop: Dark forest green lightweight zip-up windbreaker jacket, sleeves slightly bunched at elbows\nbase_layer: Matching vibrant orange sports bra and high-waisted athletic shorts\nfootwear: Classic white leather sneakers with three black stripes and gum-colored soles\naccessories: White crew-length athletic socks with bold black 'SAME' text branding\npose: Confident seated stance on stacked cubes, legs spread wide, leaning slightly forward, elbows resting on thighs\nemotion:\nprimary: Empowered, cool, and confident\ngaze: Direct, intense eye contact with the camera\n\nlighting_and_atmosphere:\nkey_light: Large overhead softbox providing even illumination\nfill_light: Reflected light from the orange props giving a warm glow to the skin\ncontrast: Crisp definition with soft, controlled shadows to emphasize muscle tone"

TEMPLATES: dict[str, str] = {
    "Magazine shoot (structured)": MAGAZINE_SHOOT,
    "Product still life": (
        "A matte ceramic coffee cup on a walnut table, soft window light from the left, shallow depth "
        "of field, neutral beige backdrop, commercial product photography, 85mm lens"
    ),
    "Portrait": (
        "Close-up portrait of an elderly fisherman with a weathered face and a knitted wool cap, "
        "overcast harbour light, muted teal and orange palette, 50mm lens, fine skin texture"
    ),
    "Landscape": (
        "A wide alpine valley at golden hour, a winding river, pine forests, snow-capped peaks, "
        "low mist, cinematic composition, ultra-detailed"
    ),
    "Typography poster": (
        "A minimalist Swiss-style poster with the words 'FLUX LAB' in bold red sans-serif type on an "
        "off-white background, strong grid, one black circle"
    ),
}
