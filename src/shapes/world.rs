//! The procedural shapes world the embedded model is trained on: one to three
//! flat shapes on white, their captions, edits and questions.

use rand::seq::IndexedRandom;
use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    Circle,
    Square,
    Triangle,
    Star,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Color {
    Red,
    Green,
    Blue,
    Yellow,
    Purple,
    Orange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Size {
    Small,
    Large,
}

/// A cell of the 3 x 3 layout, row-major from the top left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pos(pub u8);

pub const SHAPES: [Shape; 4] = [Shape::Circle, Shape::Square, Shape::Triangle, Shape::Star];
pub const COLORS: [Color; 6] = [Color::Red, Color::Green, Color::Blue, Color::Yellow, Color::Purple, Color::Orange];
pub const SIZES: [Size; 2] = [Size::Small, Size::Large];
pub const WHITE: [u8; 3] = [255, 255, 255];

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Star => "star",
        }
    }
}

impl Color {
    pub fn name(self) -> &'static str {
        match self {
            Color::Red => "red",
            Color::Green => "green",
            Color::Blue => "blue",
            Color::Yellow => "yellow",
            Color::Purple => "purple",
            Color::Orange => "orange",
        }
    }
    /// The exact RGB of the palette.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Color::Red => [220, 40, 40],
            Color::Green => [40, 170, 60],
            Color::Blue => [40, 80, 220],
            Color::Yellow => [240, 200, 40],
            Color::Purple => [140, 60, 190],
            Color::Orange => [245, 130, 30],
        }
    }
}

impl Size {
    pub fn name(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Large => "large",
        }
    }
}

impl Pos {
    pub const ALL: [Pos; 9] = [Pos(0), Pos(1), Pos(2), Pos(3), Pos(4), Pos(5), Pos(6), Pos(7), Pos(8)];
    pub fn row(self) -> u8 {
        self.0 / 3
    }
    pub fn col(self) -> u8 {
        self.0 % 3
    }
    pub fn name(self) -> &'static str {
        ["top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"][self.0 as usize]
    }
    /// "in the center", "on the left", "at the top left".
    pub fn phrase(self) -> String {
        match self.0 {
            4 => "in the center".into(),
            3 | 5 => format!("on the {}", self.name()),
            _ => format!("at the {}", self.name()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object {
    pub shape: Shape,
    pub color: Color,
    pub size: Size,
    pub pos: Pos,
}

impl Object {
    pub fn describe(&self) -> String {
        format!("a {} {} {} {}", self.size.name(), self.color.name(), self.shape.name(), self.pos.phrase())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scene {
    pub objects: Vec<Object>,
}

pub fn random_object(rng: &mut impl Rng, taken: &[Pos]) -> Object {
    let free: Vec<Pos> = Pos::ALL.iter().copied().filter(|p| !taken.contains(p)).collect();
    Object {
        shape: *SHAPES.choose(rng).unwrap_or(&Shape::Circle),
        color: *COLORS.choose(rng).unwrap_or(&Color::Red),
        size: *SIZES.choose(rng).unwrap_or(&Size::Large),
        pos: *free.choose(rng).unwrap_or(&Pos(4)),
    }
}

impl Scene {
    /// One to three objects at distinct positions.
    pub fn random(rng: &mut impl Rng) -> Scene {
        Self::random_upto(rng, 3)
    }

    /// One to `max` objects at distinct positions.
    pub fn random_upto(rng: &mut impl Rng, max: usize) -> Scene {
        let n = rng.random_range(1..=max.max(1));
        let mut objects: Vec<Object> = Vec::new();
        for _ in 0..n {
            let taken: Vec<Pos> = objects.iter().map(|o| o.pos).collect();
            objects.push(random_object(rng, &taken));
        }
        Scene { objects }
    }

    pub fn caption(&self) -> String {
        self.objects.iter().map(Object::describe).collect::<Vec<_>>().join(" and ")
    }

    fn unique_shape(&self, s: Shape) -> bool {
        self.objects.iter().filter(|o| o.shape == s).count() == 1
    }
}

/// An edit instruction and the scene it leads to.
#[derive(Debug, Clone)]
pub struct Edit {
    pub instruction: String,
    pub target: Scene,
}

/// A random applicable edit: recolour, remove, add or move (objects are named
/// by shape, so only shapes that occur once are edited).
pub fn random_edit(scene: &Scene, rng: &mut impl Rng) -> Option<Edit> {
    let named: Vec<usize> = (0..scene.objects.len()).filter(|&i| scene.unique_shape(scene.objects[i].shape)).collect();
    for _ in 0..8 {
        let kind = rng.random_range(0..4);
        match kind {
            0 if !named.is_empty() => {
                let i = *named.choose(rng)?;
                let o = scene.objects[i];
                let c = *COLORS.iter().filter(|&&c| c != o.color).collect::<Vec<_>>().choose(rng)?;
                let mut t = scene.clone();
                t.objects[i].color = *c;
                return Some(Edit { instruction: format!("make the {} {}", o.shape.name(), c.name()), target: t });
            }
            1 if !named.is_empty() && scene.objects.len() > 1 => {
                let i = *named.choose(rng)?;
                let mut t = scene.clone();
                let o = t.objects.remove(i);
                return Some(Edit { instruction: format!("remove the {}", o.shape.name()), target: t });
            }
            2 if scene.objects.len() < 3 => {
                let taken: Vec<Pos> = scene.objects.iter().map(|o| o.pos).collect();
                let o = random_object(rng, &taken);
                let mut t = scene.clone();
                t.objects.push(o);
                let what = format!("{} {} {}", o.size.name(), o.color.name(), o.shape.name());
                return Some(Edit { instruction: format!("add a {what} {}", o.pos.phrase()), target: t });
            }
            3 if !named.is_empty() => {
                let i = *named.choose(rng)?;
                let taken: Vec<Pos> = scene.objects.iter().map(|o| o.pos).collect();
                let free: Vec<Pos> = Pos::ALL.iter().copied().filter(|p| !taken.contains(p)).collect();
                let to = *free.choose(rng)?;
                let mut t = scene.clone();
                t.objects[i].pos = to;
                return Some(Edit { instruction: format!("move the {} to the {}", scene.objects[i].shape.name(), to.name()), target: t });
            }
            _ => {}
        }
    }
    None
}

pub fn number_word(n: usize) -> &'static str {
    ["zero", "one", "two", "three", "four"][n.min(4)]
}

/// A random question about the scene with its answer.
pub fn random_question(scene: &Scene, rng: &mut impl Rng) -> (String, String) {
    let named: Vec<&Object> = scene.objects.iter().filter(|o| scene.unique_shape(o.shape)).collect();
    loop {
        match rng.random_range(0..5) {
            0 if !named.is_empty() => {
                let o = named.choose(rng).copied().unwrap_or(&scene.objects[0]);
                return (format!("what color is the {}?", o.shape.name()), o.color.name().into());
            }
            1 if scene.objects.len() == 1 => {
                return ("what shape is in the image?".into(), scene.objects[0].shape.name().into());
            }
            2 => return ("how many shapes are there?".into(), number_word(scene.objects.len()).into()),
            3 if !named.is_empty() => {
                let o = named.choose(rng).copied().unwrap_or(&scene.objects[0]);
                return (format!("where is the {}?", o.shape.name()), o.pos.name().into());
            }
            4 => {
                let s = *SHAPES.choose(rng).unwrap_or(&Shape::Circle);
                let yes = scene.objects.iter().any(|o| o.shape == s);
                return (format!("is there a {}?", s.name()), if yes { "yes" } else { "no" }.into());
            }
            _ => {}
        }
    }
}

/// Every word the world's texts use (for the tokenizer's vocabulary).
pub fn vocabulary() -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        for w in s.split(|c: char| c.is_whitespace()) {
            if !w.is_empty() {
                words.push(w.to_string());
            }
        }
    };
    for s in SHAPES {
        add(s.name());
    }
    for c in COLORS {
        add(c.name());
    }
    for z in SIZES {
        add(z.name());
    }
    for p in Pos::ALL {
        add(&p.phrase());
    }
    add("a and make remove add move to what color is the shape in image how many shapes are there where yes no zero one two three four");
    words.sort();
    words.dedup();
    words
}
